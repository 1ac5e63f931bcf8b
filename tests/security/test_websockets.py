"""Websockets on the public internet: a client that never reads, too many sockets, a session
that ended, a foreign origin, hostile frames. Each test reproduces a finding of the security
review; the figures (memory under 200 non-reading sockets) are in tests/bench/bench_security.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.test import Client

from chat.models import Room
from chat.publishing import messages_publish, messages_sequence
from chat.services import message_post, room_get_or_create
from project.asgi import application
from tests.chat.conftest import frames_until, joined, open_chat
from tests.clients import SAME_ORIGIN
from tests.processes import Process, Processes, wait_for
from tests.security.sockets import RawSocket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_layer")]


def logged_in(user: Any, password: str) -> Client:
    client = Client()
    assert client.login(username=user.username, password=password)
    return client


async def jobs_socket(client: Client | None = None, **headers: bytes) -> WebsocketCommunicator:
    sent = [*SAME_ORIGIN]
    if client is not None:
        sent.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    sent = [(name, value) for name, value in sent if name.decode() not in headers]
    sent += [(name.encode(), value) for name, value in headers.items()]
    return WebsocketCommunicator(application, "/ws/jobs/", headers=sent)


async def opened(communicator: WebsocketCommunicator) -> dict[str, Any]:
    """Connect; the first frame, or the close that came instead."""
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    output: dict[str, Any] = await communicator.receive_output(5)
    return output


# --------------------------------------------------------------- a client that stops reading


def serve_flood(processes: Processes, **env: str) -> Process:
    return processes.daphne("flood", "tests.security.flood_app:application", **env)


def test_a_client_that_stops_reading_is_cut_off_and_one_that_reads_gets_everything(
    processes: Processes,
) -> None:
    # 16 MB at 1.6 MB/s: more than a stalled client's socket buffers hold, slow enough that
    # a reading client keeps up on a busy machine.
    frames, frame_bytes = 1000, 16 * 1024
    port = serve_flood(
        processes,
        FLOOD_FRAMES=str(frames),
        FLOOD_FRAME_BYTES=str(frame_bytes),
        FLOOD_INTERVAL="0.01",
        WEBSOCKET_SEND_BUFFER_MAX=str(1024 * 1024),
    ).port
    stalled = RawSocket(port, "/ws/flood/")
    reader = RawSocket(port, "/ws/flood/")
    try:
        # The reader reads all of it (16 MB), and its connection stays open.
        received, ended = reader.read_until_closed(timeout=120, enough=frames * frame_bytes)
        assert received >= frames * frame_bytes
        assert not ended, "a client that reads must not be cut off"
        # The other did not read meanwhile: the server gave up on it once 1 MiB waited
        # beyond what the sockets' buffers hold, and dropped the connection.
        received, ended = stalled.read_until_closed(timeout=60)
        assert ended, "the server still holds the connection of a client that does not read"
        assert received < frames * frame_bytes / 2
    finally:
        stalled.close()
        reader.close()


def test_sockets_that_stop_reading_are_cut_off_once_they_hold_the_process_total(
    processes: Processes,
) -> None:
    # Each socket alone stays under its own bound (64 MiB > 25 MB sent to it), but together
    # they pass the process's: however many stop reading, the server holds at most that.
    frames, frame_bytes = 400, 64 * 1024
    server = serve_flood(
        processes,
        FLOOD_FRAMES=str(frames),
        FLOOD_FRAME_BYTES=str(frame_bytes),
        FLOOD_INTERVAL="0.001",
        WEBSOCKET_SEND_BUFFER_MAX=str(64 * 1024 * 1024),
        WEBSOCKET_SEND_BUFFER_TOTAL_MAX=str(2 * 1024 * 1024),
    )
    assert server.port is not None
    stalled = [RawSocket(server.port, "/ws/flood/") for _ in range(3)]
    try:
        # Nobody reads until the server has given up on all three (its log says so).
        wait_for(
            lambda: server.output().count("bytes unread") >= len(stalled), 60, "the sockets cut"
        )
        for sock in stalled:
            received, ended = sock.read_until_closed(timeout=60)
            assert ended, "the server still holds a connection of a client that does not read"
            assert received < frames * frame_bytes / 2
    finally:
        for sock in stalled:
            sock.close()


def test_frames_sent_to_a_closing_socket_are_dropped_not_an_application_error(
    processes: Processes,
) -> None:
    server = serve_flood(processes, FLOOD_FRAMES="50", FLOOD_INTERVAL="0.01", FLOOD_CLOSE_FIRST="1")
    assert server.port is not None
    # The server closes the socket, and its application goes on sending while the client
    # has not answered the close yet.
    closing = RawSocket(server.port, "/ws/flood/")
    closing.close()
    crashed = "Exception inside application"
    wait_for(
        lambda: "flood ended" in server.output() or crashed in server.output(),
        30,
        "the application to end",
    )
    assert crashed not in server.output()


async def test_replay_on_connect_is_capped_and_older_pages_come_through_history(
    user: Any, password: str, settings: Any
) -> None:
    def fill() -> Room:
        room = room_get_or_create(name="busy")
        for n in range(settings.CHAT["REPLAY_MAX"] + 30):
            message_post(room=room, author=user, body=f"m{n}")
        messages_sequence(room_id=room.pk)
        messages_publish(room_id=room.pk)
        return room

    await database_sync_to_async(fill)()
    communicator = await open_chat("/ws/chat/busy/?since=0", user, password)
    history, _presence = await joined(communicator)
    # More than REPLAY_MAX missed: the latest page, and the page starts over.
    assert history["reset"] is True
    assert len(history["messages"]) == settings.CHAT["HISTORY_SIZE"]
    oldest = history["messages"][0]["seq"]
    await communicator.send_json_to({"type": "chat.history", "before": oldest})
    (older,) = await frames_until(communicator, lambda f: f.get("before") == oldest)
    assert older["messages"][-1]["seq"] == oldest - 1
    await communicator.disconnect()


async def test_the_jobs_snapshot_is_capped(user: Any, password: str) -> None:
    from media_tasks.consumers import SNAPSHOT_MAX
    from tests import tasks
    from workers.backends import enqueue_for

    def enqueue_many() -> None:
        with enqueue_for(owner=user):
            for _ in range(SNAPSHOT_MAX + 5):
                tasks.trivial.enqueue()

    await database_sync_to_async(enqueue_many)()
    client = await sync_to_async(logged_in)(user, password)
    snapshot = await opened(await jobs_socket(client))
    import json

    frame = json.loads(snapshot["text"])
    assert len(frame["jobs"]) == SNAPSHOT_MAX
    assert frame["truncated"] is True


# -------------------------------------------------------------------- how many, how often


async def test_a_user_gets_a_bounded_number_of_sockets_per_server(
    user: Any, password: str, settings: Any
) -> None:
    settings.WEBSOCKETS = {**settings.WEBSOCKETS, "PER_USER": 3}
    client = await sync_to_async(logged_in)(user, password)
    open_ones = []
    for _ in range(3):
        communicator = await jobs_socket(client)
        assert (await opened(communicator))["type"] == "websocket.send"
        open_ones.append(communicator)
    # Chat sockets count too.
    refused = await open_chat("/ws/chat/general/", user, password)
    assert await refused.receive_output(5) == {"type": "websocket.close", "code": 4429}
    one_more = await jobs_socket(client)
    assert await opened(one_more) == {"type": "websocket.close", "code": 4429}
    # Closing one makes room for another.
    await open_ones.pop().disconnect()
    await asyncio.sleep(0.1)
    again = await jobs_socket(client)
    assert (await opened(again))["type"] == "websocket.send"
    for communicator in [*open_ones, again]:
        await communicator.disconnect()


async def test_connects_of_one_user_are_limited_per_window(
    user: Any, password: str, settings: Any
) -> None:
    settings.WEBSOCKETS = {**settings.WEBSOCKETS, "CONNECT_RATE": 4, "CONNECT_WINDOW": 3600}
    client = await sync_to_async(logged_in)(user, password)
    for _ in range(4):
        communicator = await jobs_socket(client)
        assert (await opened(communicator))["type"] == "websocket.send"
        await communicator.disconnect()
    communicator = await jobs_socket(client)
    assert await opened(communicator) == {"type": "websocket.close", "code": 4429}


async def test_history_pages_and_new_rooms_are_limited_per_user(
    user: Any, password: str, settings: Any
) -> None:
    settings.CHAT = {**settings.CHAT, "HISTORY_RATE": 2, "HISTORY_WINDOW": 3600}
    settings.CHAT["ROOMS_PER_HOUR"] = 2
    communicator = await open_chat("/ws/chat/first/", user, password)
    await joined(communicator)
    for _ in range(2):
        await communicator.send_json_to({"type": "chat.history", "before": 5})
        (_page,) = await frames_until(communicator, lambda f: f["type"] == "chat.history")
    await communicator.send_json_to({"type": "chat.history", "before": 5})
    (error,) = await frames_until(communicator, lambda f: f["type"] == "chat.error")
    assert error["code"] == "rate_limited"
    assert "at most 2 pages of history" in error["error"]
    second = await open_chat("/ws/chat/second/", user, password)
    await joined(second)
    # A third new room in the hour is refused; an existing one is not.
    third = await open_chat("/ws/chat/third/", user, password)
    assert await third.receive_output(5) == {"type": "websocket.close", "code": 4429}
    assert not await database_sync_to_async(Room.objects.filter(name="third").exists)()
    again = await open_chat("/ws/chat/first/", user, password)
    await joined(again)
    for each in (communicator, second, again):
        await each.disconnect()


# ------------------------------------------------------------------ a session that ended


async def test_logging_out_closes_the_sockets_of_that_session_only(
    user: Any, password: str
) -> None:
    first = await sync_to_async(logged_in)(user, password)
    second = await sync_to_async(logged_in)(user, password)
    leaving, staying = await jobs_socket(first), await jobs_socket(second)
    for communicator in (leaving, staying):
        assert (await opened(communicator))["type"] == "websocket.send"
    assert (await sync_to_async(first.post)("/accounts/logout/")).status_code == 302
    assert await leaving.receive_output(5) == {"type": "websocket.close", "code": 4401}
    assert await staying.receive_nothing(0.5)
    await staying.disconnect()


@pytest.mark.parametrize("change", ["password", "deactivated"])
async def test_a_password_change_or_deactivation_closes_the_users_sockets(
    user: Any, password: str, change: str
) -> None:
    client = await sync_to_async(logged_in)(user, password)
    communicator = await jobs_socket(client)
    assert (await opened(communicator))["type"] == "websocket.send"

    def apply() -> None:
        if change == "password":
            user.set_password("a-new-long-password-77")
        else:
            user.is_active = False
        user.save()

    await database_sync_to_async(apply)()
    assert await communicator.receive_output(5) == {"type": "websocket.close", "code": 4401}


async def test_a_long_lived_socket_checks_its_session_again(
    user: Any, password: str, settings: Any
) -> None:
    settings.WEBSOCKETS = {**settings.WEBSOCKETS, "SESSION_RECHECK": 0.2}
    client = await sync_to_async(logged_in)(user, password)
    communicator = await jobs_socket(client)
    assert (await opened(communicator))["type"] == "websocket.send"
    assert await communicator.receive_nothing(0.5)
    # The session ends without a logout (it expired; clearsessions removed it).
    await database_sync_to_async(Session.objects.all().delete)()
    assert await communicator.receive_output(5) == {"type": "websocket.close", "code": 4401}


# ------------------------------------------------------------------------- origin, frames


@pytest.mark.parametrize(
    ("host", "origin", "allowed"),
    [
        (b"localhost:8000", b"http://localhost:8000", True),
        (b"localhost:8000", b"http://localhost:9000", False),
        (b"localhost:8000", b"https://localhost:8000", False),
        (b"localhost", b"http://localhost.evil.example", False),
        (b"evil.example", b"http://evil.example", False),
        (b"localhost", b"null", False),
    ],
)
async def test_the_origin_must_be_the_sites_own_scheme_host_and_port(
    user: Any, password: str, host: bytes, origin: bytes, allowed: bool
) -> None:
    client = await sync_to_async(logged_in)(user, password)
    communicator = await jobs_socket(client, host=host, origin=origin)
    connected, _ = await communicator.connect(timeout=5)
    assert connected == allowed
    await communicator.disconnect()


async def test_a_trusted_origin_is_allowed(user: Any, password: str, settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com"]
    client = await sync_to_async(logged_in)(user, password)
    communicator = await jobs_socket(client, origin=b"https://app.example.com")
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await communicator.disconnect()


async def test_deeply_nested_json_gets_a_clear_error_and_the_socket_stays(
    user: Any, password: str
) -> None:
    communicator = await open_chat("/ws/chat/general/", user, password)
    await joined(communicator)
    await communicator.send_to(text_data="[" * 10_000)
    (error,) = await frames_until(communicator, lambda f: f["type"] == "chat.error")
    assert error["code"] == "bad_frame"
    assert "nested too deeply" in error["error"]
    # The socket goes on.
    await communicator.send_json_to({"type": "chat.history", "before": 1})
    await frames_until(communicator, lambda f: f["type"] == "chat.history")
    await communicator.disconnect()


async def test_the_jobs_socket_refuses_frames_in_the_same_shape(user: Any, password: str) -> None:
    client = await sync_to_async(logged_in)(user, password)
    communicator = await jobs_socket(client)
    await opened(communicator)
    await communicator.send_to(text_data="[" * 5000)
    error = await communicator.receive_json_from(5)
    assert error == {
        "type": "error",
        "code": "bad_frame",
        "error": "Frames must be JSON objects; this one is nested too deeply.",
    }
    await communicator.disconnect()


async def test_the_rate_limiter_counts_in_the_process_while_redis_is_away(
    settings: Any, caplog: Any, monkeypatch: Any
) -> None:
    from wire import ratelimit
    from wire.outage import Outage

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    ratelimit._redis_away_until = 0.0
    monkeypatch.setattr(ratelimit, "_redis", Outage("Redis for the rate limits", ratelimit.logger))
    results = [await ratelimit.hit("away", limit=1, window=60) for _ in range(3)]
    assert results[0] is None
    assert all(wait is not None and wait > 0 for wait in results[1:])
    # Redis is asked once, not for every hit, while it is away; its going away is one line.
    assert caplog.text.count("Redis for the rate limits failing: ConnectionError") == 1
    ratelimit._redis_away_until = 0.0
    await ratelimit.hit("away", limit=1, window=60)
    assert caplog.text.count("Redis for the rate limits failing") == 1

"""Chat test helpers: a logged-in websocket on the real ASGI application, and the job runtime's
worker for `chat-messages` running on the test's own event loop and channel layer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import ChannelNameRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

from chat.models import Room
from chat.publishing import messages_publish, messages_sequence
from chat.services import message_post, room_get_or_create
from project.asgi import application
from project.routing import channel_routes
from tests.clients import SAME_ORIGIN, collect_until
from wire import ratelimit
from workers.worker import Worker


@pytest.fixture(autouse=True)
def _fresh_chat_state(settings: Any, flush_redis: None) -> None:
    # The local rate limiter is process-wide: empty it per test.
    ratelimit._local.clear()
    # Short waits, so that batching and gap filling show within a test's patience.
    settings.CHAT = {**settings.CHAT, "PRESENCE_BATCH": 0.05, "GAP_WAIT": 0.3}


@pytest.fixture
async def chat_worker(transactional_db: None) -> AsyncIterator[Worker]:
    """A `chat-messages` worker in this process, as `runserver` embeds it."""
    worker = Worker(
        application=ChannelNameRouter(channel_routes),
        channels=["chat-messages"],
        channel_layer=get_channel_layer(),
        handle_signals=False,
    )
    running = asyncio.create_task(worker.arun())
    yield worker
    worker.request_stop()
    await asyncio.wait_for(running, 20)


async def session_cookie(user: Any, password: str) -> bytes:
    client = Client()
    assert await sync_to_async(client.login)(username=user.username, password=password)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_chat(
    path: str, user: Any = None, password: str = "", *, expect_accept: bool = True
) -> WebsocketCommunicator:
    """A websocket to `path` through the whole ASGI stack (origin check, session auth)."""
    headers = [*SAME_ORIGIN]
    if user is not None:
        headers.append((b"cookie", await session_cookie(user, password)))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected == expect_accept
    return communicator


async def frames_until(
    communicator: WebsocketCommunicator,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 5,
) -> list[dict[str, Any]]:
    """Collect JSON frames until one satisfies `done` (included); fail after `timeout`."""

    async def next_frame() -> dict[str, Any]:
        output = await communicator.receive_output(timeout)
        assert output["type"] == "websocket.send", output
        frame: dict[str, Any] = json.loads(output["text"])
        return frame

    return await collect_until(next_frame, done, timeout)


async def joined(communicator: WebsocketCommunicator) -> tuple[dict[str, Any], dict[str, Any]]:
    """The frames every connection starts with: its history, then who is here."""
    history = await communicator.receive_json_from(5)
    assert history["type"] == "chat.history", history
    presence = await communicator.receive_json_from(5)
    assert presence["type"] == "chat.presence", presence
    return history, presence


async def entered(path: str, user: Any, password: str) -> WebsocketCommunicator:
    """A websocket in the room, past its history and presence frames, and past the room's
    batched news of this user joining (which may otherwise come between later frames)."""
    communicator = await open_chat(path, user, password)
    await joined(communicator)
    await frames_until(
        communicator,
        lambda f: f["type"] == "chat.presence" and user.username in f.get("joined", []),
    )
    return communicator


def messages_in(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["type"] == "chat.message"]


async def frames_for(communicator: WebsocketCommunicator, seconds: float) -> list[dict[str, Any]]:
    """Every JSON frame that arrives within `seconds`."""
    frames: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        if await communicator.receive_nothing(min(left, 0.05)):
            continue
        frames.append(await communicator.receive_json_from())
    return frames


@database_sync_to_async
def post_published(room_name: str, author: Any, bodies: list[str]) -> Room:
    """Messages already sequenced and broadcast, as if sent earlier."""
    room = room_get_or_create(name=room_name)
    for n, body in enumerate(bodies):
        message_post(room=room, author=author, body=body, client_id=f"earlier-{n}")
    messages_sequence(room_id=room.pk)
    messages_publish(room_id=room.pk)
    return room


def is_message(body: str) -> Any:
    return lambda frame: frame["type"] == "chat.message" and frame["body"] == body

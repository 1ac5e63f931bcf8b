"""While the database does not answer (PostgreSQL restarting), requests get 503 with
Retry-After and a readable reason, JSON for the API, not a 500 and never the error's text;
websockets a close code or an error frame that says to come back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from django.db import connection

from tests.bench import PRODUCTION_ENV
from tests.clients import connect_ws, receive_until
from tests.media_tasks.proxy import CuttingProxy
from tests.processes import Process, Processes, free_port, login, wait_for
from wire.close import Close

# Nothing listens there: every connection is refused, as while PostgreSQL restarts.
NO_DATABASE = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"


@pytest.fixture
def web(processes: Processes) -> Process:
    return processes.daphne(DATABASE_URL=NO_DATABASE, **PRODUCTION_ENV)


@pytest.fixture
def server(web: Process) -> str:
    return web.url


def test_the_api_answers_503_with_retry_after_while_the_database_is_down(server: str) -> None:
    # A session cookie makes the request read the session from the database.
    response = httpx.get(f"{server}/api/uploads/", cookies={"sessionid": "x" * 32}, timeout=30)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    body = response.json()
    assert body["code"] == "unavailable"
    assert "try again" in body["error"]
    assert "127.0.0.1" not in response.text
    assert "connection" not in response.text.lower()


def test_a_page_answers_503_while_the_database_is_down(server: str) -> None:
    response = httpx.get(f"{server}/chat/", cookies={"sessionid": "x" * 32}, timeout=30)
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert "try again" in response.text


def test_a_bug_is_still_a_500_without_its_detail(processes: Processes) -> None:
    server = processes.daphne(**PRODUCTION_ENV).url
    response = httpx.get(f"{server}/api/test/broken/", timeout=30)
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
    assert response.json()["code"] == "server_error"
    assert "secret" not in response.text


def test_the_log_says_an_outage_once_and_its_end_once(web: Process) -> None:
    for _ in range(4):
        response = httpx.get(f"{web.url}/api/uploads/", cookies={"sessionid": "x" * 32}, timeout=30)
        assert response.status_code == 503
    # A request that needs no database (no session: refused as anonymous) is answered again.
    assert httpx.get(f"{web.url}/api/uploads/", timeout=30).status_code < 500
    wait_for(lambda: "back after" in web.output(), 10, "the outage's end in the log")
    log = web.output()
    assert log.count("requests' database or message broker failing: OperationalError") == 1, log
    # Not a line (a traceback) a request.
    assert "Service Unavailable: /api/uploads/" not in log, log
    back = [line for line in log.splitlines() if "back after" in line]
    assert len(back) == 1, log
    assert back[0].endswith("(4 calls failed)"), log


# Websockets: a connect that fails on the outage is closed with a code that says "come back
# soon"; a frame that fails gets an error that says when, and the socket stays open.


async def connect_refused(url: str, cookie: str) -> int:
    """The close code of a chat socket opened at `url` with the session `cookie`."""
    ws = await websockets.connect(
        url.replace("http://", "ws://") + "/ws/chat/lobby/",
        origin=websockets.Origin(url),
        additional_headers={"Cookie": f"sessionid={cookie}"} if cookie else {},
    )
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def test_a_websocket_connect_is_closed_unavailable_and_logged_once(web: Process) -> None:
    codes = [asyncio.run(connect_refused(web.url, "x" * 32)) for _ in range(3)]
    assert codes == [Close.UNAVAILABLE] * 3
    # A socket without a session needs no database: refused as anonymous, which ends it.
    assert asyncio.run(connect_refused(web.url, "")) == Close.UNAUTHENTICATED
    wait_for(
        lambda: "websockets' database or message broker back" in web.output(),
        10,
        "the outage's end in the log",
    )
    log = web.output()
    assert log.count("websockets' database or message broker failing: OperationalError") == 1
    assert "Exception inside application" not in log, log
    assert "websockets' database or message broker back after" in log
    assert "(3 calls failed)" in log, log


@pytest.mark.postgres
def test_a_frame_that_fails_on_an_outage_is_answered_and_the_socket_stays(
    processes: Processes, user: Any, password: str
) -> None:
    settings = connection.settings_dict
    database = CuttingProxy(int(settings["PORT"] or 5432))
    url = (
        f"postgres://{settings['USER'] or 'postgres'}@127.0.0.1:{database.port}/{settings['NAME']}"
    )
    web = processes.daphne(DATABASE_URL=url, CHAT_RATE_LIMIT="1000")
    alice = login(web.url, user.username, password)

    async def say(ws: Any, client_id: str) -> dict[str, Any]:
        """The answer to a message: its ack, or an error."""
        await ws.send(json.dumps({"type": "chat.message", "body": "hi", "client_id": client_id}))
        frames = await receive_until(
            ws, lambda f: f.get("client_id") == client_id and f["type"] != "chat.message", 30
        )
        return frames[-1]

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        ws = await connect_ws(web.url, "/ws/chat/lobby/", alice)
        await receive_until(ws, lambda f: f["type"] == "chat.history", 30)
        assert (await say(ws, "before"))["type"] == "chat.ack"
        # PostgreSQL away: its connections cut, new ones refused.
        database.close()
        refused = await say(ws, "during")
        # Back where it was.
        back = CuttingProxy(database.target, port=database.port)
        try:
            answered = await say(ws, "during")
        finally:
            back.close()
        await ws.close()
        return refused, answered

    refused, answered = asyncio.run(scenario())
    assert refused["type"] == "chat.error"
    assert refused["code"] == "unavailable"
    assert refused["retry_after"] > 0
    assert "try again" in refused["error"]
    # The same socket, the same message sent again: taken.
    assert answered["type"] == "chat.ack"
    log = web.output()
    assert log.count("websockets' database or message broker failing") == 1, log
    assert "Exception inside application" not in log, log

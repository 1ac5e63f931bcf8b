"""Real network clients for the project's processes: websockets with a logged-in session;
and sessions logged in as Django's login() writes them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import websockets

# The headers of a websocket a page of the site opens (for Channels' WebsocketCommunicator).
SAME_ORIGIN = ((b"origin", b"http://localhost"), (b"host", b"localhost"))


async def connect_ws(base_url: str, path: str, client: httpx.Client | None = None) -> Any:
    """Open a websocket as the user logged in on `client` (or anonymously)."""
    url = base_url.replace("http://", "ws://") + path
    headers = {}
    if client is not None:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    origin = websockets.Origin(base_url)
    return await websockets.connect(url, origin=origin, additional_headers=headers)


async def receive_until(
    ws: Any, done: Callable[[dict[str, Any]], bool], timeout: float
) -> list[dict[str, Any]]:
    """Collect JSON frames of `ws` until one satisfies `done` (included); fail after `timeout`."""

    async def next_frame() -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await ws.recv())
        return frame

    return await collect_until(next_frame, done, timeout)


async def collect_until(
    next_frame: Callable[[], Awaitable[dict[str, Any]]],
    done: Callable[[dict[str, Any]], bool],
    timeout: float,
) -> list[dict[str, Any]]:
    """Collect frames from `next_frame()` until one satisfies `done` (included); fail after
    `timeout`."""
    frames: list[dict[str, Any]] = []

    async def collect() -> None:
        while True:
            frame = await next_frame()
            frames.append(frame)
            if done(frame):
                return

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        raise AssertionError(f"no matching frame within {timeout} s; got {frames}") from None
    return frames


def session_logged_in(user: Any, backend: str = "", store: Any = None) -> str:
    """The key of a session as Django's login() writes it (by UserBackend, unless `backend`
    names another; in the site's session store, unless `store` is another class)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from project.auth import USER_BACKEND
    from project.sessions import SessionStore

    session = (store or SessionStore)()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = backend or USER_BACKEND
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    assert session.session_key is not None
    key: str = session.session_key
    return key

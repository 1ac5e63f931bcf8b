"""Real network clients for the project's processes: websockets with a logged-in session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import websockets


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
    """Collect JSON frames until one satisfies `done` (included); fail after `timeout`."""
    frames: list[dict[str, Any]] = []

    async def collect() -> None:
        while True:
            frame = json.loads(await ws.recv())
            frames.append(frame)
            if done(frame):
                return

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        raise AssertionError(f"no matching frame within {timeout} s; got {frames}") from None
    return frames

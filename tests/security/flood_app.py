"""An ASGI application for daphne that sends every websocket FLOOD_FRAMES frames of
FLOOD_FRAME_BYTES, FLOOD_INTERVAL seconds apart, without waiting for the client, then waits
for it to leave: what a busy room's broadcasts do to a client that stopped reading
(FLOOD_CLOSE_FIRST=1: closes the socket first, and sends all the same). Served
with the project's changes to daphne (project/server.py), as the site is."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from project.server import tune_daphne  # noqa: E402

tune_daphne()

FRAMES = int(os.environ.get("FLOOD_FRAMES", "400"))
FRAME_BYTES = int(os.environ.get("FLOOD_FRAME_BYTES", str(64 * 1024)))
INTERVAL = float(os.environ.get("FLOOD_INTERVAL", "0.001"))
# Close the socket first, then send all the same: what an application does that sends while
# the server is closing its socket (a handshake timeout, a close of its own).
CLOSE_FIRST = os.environ.get("FLOOD_CLOSE_FIRST") == "1"


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"flood"})
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    if CLOSE_FIRST:
        await send({"type": "websocket.close", "code": 1000})
    frame = "x" * FRAME_BYTES
    for _ in range(FRAMES):
        await send({"type": "websocket.send", "text": frame})
        # The server writes to the socket between two frames, as between two broadcasts.
        await asyncio.sleep(INTERVAL)
    while (await receive())["type"] != "websocket.disconnect":
        pass
    print("flood ended", flush=True)

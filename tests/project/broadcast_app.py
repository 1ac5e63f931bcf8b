"""An ASGI application for daphne, served with the project's changes to daphne
(project/server.py) as the site is: once BROADCAST_SOCKETS websockets are open, it hands each
of TEXTS to every one of them in turn, as a room's hub hands a message to its connections (a
binary frame after the first); then it waits for the clients to leave. `GET /gc` answers how
its cycle collector is set."""

from __future__ import annotations

import asyncio
import gc
import json
import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from project.server import tune_daphne  # noqa: E402

tune_daphne()

SOCKETS = int(os.environ.get("BROADCAST_SOCKETS", "2"))
# Each length of a websocket frame's header (7-bit, 16-bit and 64-bit lengths), text that is
# not ASCII, and a text that was sent before (framed again, not the last). Not the empty text:
# daphne sends none.
# Then more than a socket's buffers hold (12 MB), for clients that read only later: what a
# socket does not take waits in daphne, in order.
TEXTS = ["hello", "héllo ✓ 👍", "a" * 200, "é" * 40_000, "hello", *(c * 3_000_000 for c in "wxyz")]
BINARY = b"\x00\xff binary"

sends: list[Any] = []


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await receive()
        body = b"broadcast"
        if scope["path"] == "/gc":
            body = json.dumps(
                {"thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count()}
            ).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    sends.append(send)
    if len(sends) == SOCKETS:
        for n, text in enumerate(TEXTS):
            for each in sends:
                await each({"type": "websocket.send", "text": text})
            if n == 0:
                for each in sends:
                    await each({"type": "websocket.send", "bytes": BINARY})
            # The server writes what waits between two texts, as between a room's messages.
            await asyncio.sleep(0.05)
    while (await receive())["type"] != "websocket.disconnect":
        pass

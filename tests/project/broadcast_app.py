"""An ASGI application for daphne, served with the project's changes to daphne
(project/server.py) as the site is: once BROADCAST_SOCKETS websockets are open, it hands each
of TEXTS to every one of them in turn, as a room's hub hands a message to its connections, and
a binary frame between them; then it waits for the clients to leave."""

from __future__ import annotations

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
TEXTS = ["hello", "héllo ✓ 👍", "a" * 200, "é" * 40_000, "hello"]
BINARY = b"\x00\xff binary"

sends: list[Any] = []


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"broadcast"})
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    sends.append(send)
    if len(sends) == SOCKETS:
        for text in TEXTS:
            for each in sends:
                await each({"type": "websocket.send", "text": text})
            if text == TEXTS[0]:
                for each in sends:
                    await each({"type": "websocket.send", "bytes": BINARY})
    while (await receive())["type"] != "websocket.disconnect":
        pass

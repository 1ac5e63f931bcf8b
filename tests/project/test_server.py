"""What the project changes in daphne (project/server.py), seen by real clients of a real
daphne. The send buffers' bounds are tested in tests/security/test_websockets.py."""

from __future__ import annotations

import asyncio
import hashlib
import pprint
from typing import Any

import httpx
import websockets
from autobahn.websocket import protocol

from project.server import GC_THRESHOLDS, LazyFormat, lazy_options_log
from tests.processes import Processes
from tests.project.broadcast_app import BINARY, TEXTS


def test_a_text_handed_to_every_socket_reaches_each_whole_and_in_order(
    processes: Processes,
) -> None:
    server = processes.daphne(
        "broadcast",
        "tests.project.broadcast_app:application",
        BROADCAST_SOCKETS="3",
        WEBSOCKET_SEND_BUFFER_MAX=str(64 * 1024 * 1024),
        WEBSOCKET_SEND_BUFFER_TOTAL_MAX=str(256 * 1024 * 1024),
    )
    port = server.port

    async def clients() -> list[list[str | bytes]]:
        sockets = [
            await websockets.connect(f"ws://127.0.0.1:{port}/", max_size=2**23) for _ in range(3)
        ]

        async def frames(ws: websockets.ClientConnection) -> list[str | bytes]:
            # Not reading for a while: the server's writes fill the sockets' buffers.
            await asyncio.sleep(1)
            got = [await asyncio.wait_for(ws.recv(), 30) for _ in range(len(TEXTS) + 1)]
            await ws.close()
            return got

        return await asyncio.gather(*(frames(ws) for ws in sockets))

    expected = [TEXTS[0], BINARY, *TEXTS[1:]]
    got = asyncio.run(clients())
    # Compared by their lengths and digests first: a difference in 12 MB stays readable.
    assert [[summary(f) for f in frames] for frames in got] == [[summary(f) for f in expected]] * 3
    assert got == [expected] * 3


def summary(frame: str | bytes) -> tuple[int, str]:
    data = frame.encode() if isinstance(frame, str) else frame
    return len(data), hashlib.sha256(data).hexdigest()[:12]


def test_daphne_collects_cycles_less_often_and_not_over_what_it_loaded(
    processes: Processes,
) -> None:
    server = processes.daphne("broadcast", "tests.project.broadcast_app:application")
    collector = httpx.get(f"http://127.0.0.1:{server.port}/gc", timeout=10).json()
    assert tuple(collector["thresholds"]) == GC_THRESHOLDS
    # Django, the project and daphne, loaded before it served: tens of thousands of objects.
    assert collector["frozen"] > 10_000


class Counted:
    """A value that counts how often it is turned into text."""

    def __init__(self) -> None:
        self.formatted = 0

    def __repr__(self) -> str:
        self.formatted += 1
        return "<counted>"


def test_autobahn_s_options_log_is_formatted_only_when_written() -> None:
    lazy_options_log(protocol)
    options = [("autoPingInterval", 20), ("counted", Counted())]
    value: Any = protocol.pformat(options)
    assert isinstance(value, LazyFormat)
    assert options[1][1].formatted == 0
    # What the log writes, when it does (it formats its template so), is what pprint wrote.
    template = "\n{attrs}"
    assert template.format(attrs=value) == "\n" + pprint.pformat(options)
    assert str(value) == pprint.pformat(options)
    assert options[1][1].formatted > 0
    # Its other use, a Timings' text, is text still.
    timings = protocol.Timings()
    timings.track("open")
    assert "open" in str(timings)

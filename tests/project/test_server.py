"""What the project changes in daphne (project/server.py), seen by real clients of a real
daphne. The send buffers' bounds are tested in tests/security/test_websockets.py."""

from __future__ import annotations

import asyncio
import sys

import websockets

from tests.processes import Processes, free_port, wait_until_serving
from tests.project.broadcast_app import BINARY, TEXTS


def test_a_text_handed_to_every_socket_reaches_each_whole_and_in_order(
    processes: Processes,
) -> None:
    port = free_port()
    server = processes.start(
        "broadcast",
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "tests.project.broadcast_app:application",
        ],
        port=port,
        BROADCAST_SOCKETS="3",
    )
    wait_until_serving(server)

    async def clients() -> list[list[str | bytes]]:
        sockets = [
            await websockets.connect(f"ws://127.0.0.1:{port}/", max_size=2**20) for _ in range(3)
        ]

        async def frames(ws: websockets.ClientConnection) -> list[str | bytes]:
            got = [await asyncio.wait_for(ws.recv(), 10) for _ in range(len(TEXTS) + 1)]
            await ws.close()
            return got

        return await asyncio.gather(*(frames(ws) for ws in sockets))

    expected = [TEXTS[0], BINARY, *TEXTS[1:]]
    assert asyncio.run(clients()) == [expected] * 3

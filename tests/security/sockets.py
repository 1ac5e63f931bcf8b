"""A raw websocket client for tests of what the server does to a client that stops reading:
it completes the handshake, then reads only when told, through a tiny receive window."""

from __future__ import annotations

import base64
import os
import socket
import time


class RawSocket:
    def __init__(self, port: int, path: str, *, headers: dict[str, str] | None = None) -> None:
        self.sock = socket.socket()
        # A small window: what the client does not read piles up on the server's side.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            f"Origin: http://127.0.0.1:{port}",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(1)
            assert chunk, "the server closed before answering the handshake"
            response += chunk
        status = response.split(b"\r\n", 1)[0]
        assert b" 101 " in status, response

    def read_until_closed(self, timeout: float, enough: int | None = None) -> tuple[int, bool]:
        """Read everything until the server ends the connection, or (`enough`) until that
        many bytes came: (bytes read, whether it ended within `timeout`)."""
        self.sock.settimeout(0.5)
        total = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (enough is None or total < enough):
            try:
                chunk = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            except ConnectionResetError:
                return total, True
            if not chunk:
                return total, True
            total += len(chunk)
        return total, False

    def close(self) -> None:
        self.sock.close()

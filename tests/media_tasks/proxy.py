"""A TCP relay on loopback between a client and the site that counts the bytes the client
sends and can cut every connection once a number of them went through: a dropped network,
as the resumable-upload tests need it."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class CuttingProxy:
    """Relays 127.0.0.1:<port> to 127.0.0.1:<target>. `sent` counts client-to-server bytes;
    after `cut_after(n)`, the connections are closed once n more bytes went through."""

    def __init__(self, target: int, port: int = 0) -> None:
        self.target = target
        self.sent = 0
        self.cuts = 0
        self._cut_at: int | None = None
        self._lock = threading.Lock()
        # A given `port`: a relay back where an earlier one was (a service come back).
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_after(self, more: int) -> None:
        with self._lock:
            self._cut_at = self.sent + more

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        try:
            while block := source.recv(65536):
                if counted:
                    with self._lock:
                        if self._cut_at is not None and self.sent + len(block) > self._cut_at:
                            self._cut_at = None
                            self.cuts += 1
                            self._close_all()
                            return
                        self.sent += len(block)
                sink.sendall(block)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def _close_all(self) -> None:
        for end in self._open:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()
        self._open.clear()

    def close(self) -> None:
        self._stopped = True
        # A thread blocked in accept() keeps a closed listener taking connections: woken first.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            self._close_all()

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

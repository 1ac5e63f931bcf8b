"""What this project changes in daphne, its ASGI server (and runserver's): applied when the
ASGI application is imported (project/asgi.py), and a no-op under another server.

- Twisted's second parse of every upload is turned off (`skip_twisted_form_parsing`).
- A request body reaches Django in chunks of REQUEST_BODY_CHUNK, not daphne's 8 KiB
  (`larger_body_chunks`).
- Each websocket gets a bound on the bytes waiting to be written to its client, and the
  process one on all of them together (`bound_websocket_send_buffers`): a client that stops
  reading would otherwise make daphne buffer every frame sent to it, without limit.
- A text sent to many sockets in a row (a room's hub hands the same text to each of its
  connections) is encoded and framed once (`frame_text_once`), and written to the socket at
  once when nothing waits before it (`write_now`).
- autobahn's debug log of each new websocket's options is formatted only when it is written
  (`lazy_options_log`).
- Python's cycle collector runs less often, and not over what the process loaded before it
  served (`collect_less_often`).
"""

from __future__ import annotations

import gc
import inspect
import logging
import pprint
from typing import Any, ClassVar

from autobahn.exception import Disconnected
from django.conf import settings
from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from wire.close import Close

logger = logging.getLogger(__name__)


def tune_daphne() -> None:
    try:
        from daphne import http_protocol, ws_protocol
    except ImportError:  # served by another ASGI server
        return
    from autobahn.websocket import protocol
    from daphne import server

    collect_less_often()
    lazy_options_log(protocol)
    skip_twisted_form_parsing(http_protocol.WebRequest)
    larger_body_chunks(server.Server)
    # In this order: the send budgets count what is sent, framed once or not.
    frame_text_once(ws_protocol.WebSocketProtocol)
    bound_websocket_send_buffers(ws_protocol.WebSocketProtocol)


# The collector's thresholds where the ASGI application is loaded (daphne, runserver, the
# workers; Python's are 700, 10, 10): a young collection once the tracked objects grew by
# 10,000, an older one every 10 of those, the full one every 10 of those (and only once what
# it would scan grew by a quarter, Python's own rule).
GC_THRESHOLDS = (10_000, 10, 10)


def collect_less_often() -> None:
    """A websocket that closes leaves its objects (daphne's protocol, the consumer, its task,
    queue, session and user, a hundred and fifty or so) in reference cycles that only the
    cycle collector frees; at Python's thresholds a reconnect storm ran it over the whole heap
    (each socket's objects and everything Django loaded) every few hundred connects: 17 % of
    daphne's CPU in a storm of 2,000, each full collection 0.5 s. The objects loaded before
    the server runs are frozen (never scanned again: they live as long as the process), and
    the thresholds raised to GC_THRESHOLDS: 1.3 s of collection in that storm instead of 5.9
    s. The garbage waits longer for the collector: at most the objects of about 2,800
    closed sockets' worth of allocations, freed at the next full collection."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class LazyFormat:
    """pprint.pformat(value), computed only when the log message is written."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        return format(pprint.pformat(self.value), spec)

    def __str__(self) -> str:
        return pprint.pformat(self.value)

    __repr__ = __str__


def lazy_options_log(protocol_module: Any) -> None:
    """autobahn pretty-prints each new websocket's forty options for a debug log, whether or
    not debug messages are written (3 % of daphne's CPU in a reconnect storm): its pformat
    returns a LazyFormat instead, which the log formats only when it writes the message."""
    protocol_module.pformat = LazyFormat
    # Its one use that is not a log message's argument, a Timings' text, stays as it was.
    protocol_module.Timings.__str__ = lambda timings: pprint.pformat(timings._timings)


def skip_twisted_form_parsing(request_class: Any) -> None:
    """Daphne never reads the form Twisted parses into `request.args`, yet Twisted parses every
    multipart upload before Django parses it again: over half the server's time on a 12 MB
    upload. Turn Twisted's copy off where Twisted allows it."""
    from twisted.web import http as twisted_http

    parameters = inspect.signature(twisted_http.Request.__init__).parameters
    if "parsePOSTFormSubmission" not in parameters or getattr(request_class, "_form_off", False):
        return
    original = request_class.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        original(self, *args, **kwargs)

    request_class.__init__ = __init__
    request_class._form_off = True


# Daphne has the whole body (on disk past 100 kB) before it hands it to Django, one ASGI message
# per chunk; Django writes each chunk past FILE_UPLOAD_MAX_MEMORY_SIZE to its own file through a
# thread. At daphne's 8 KiB that is a thread hop per 8 KiB: most of daphne's CPU for a 15 MB
# upload. The memory is the same whatever the chunk: daphne queues the whole body at once.
REQUEST_BODY_CHUNK = 1024 * 1024


def larger_body_chunks(server_class: Any) -> None:
    """Make the server hand request bodies to the application in chunks of REQUEST_BODY_CHUNK."""
    if getattr(server_class, "_larger_chunks", False):
        return
    original = server_class.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.request_buffer_size = max(self.request_buffer_size, REQUEST_BODY_CHUNK)

    server_class.__init__ = __init__
    server_class._larger_chunks = True


def frame_text_once(protocol_class: Any) -> None:
    """Send a text that is the same as the last one sent (to any socket of the process) as the
    same bytes: autobahn's prepared message, encoded and framed once, where autobahn would
    encode, check and frame it again for each of a room's thousand connections. Not for
    compressed sockets (daphne offers no compression) or one not open yet or any more (the
    original send accepts it first, or refuses it)."""
    if getattr(protocol_class, "_frames_once", False):
        return
    server_send = protocol_class.serverSend
    last: dict[str, Any] = {"text": None, "frame": None}

    def serverSend(self: Any, content: Any, binary: bool = False) -> None:
        if binary or self.state != self.STATE_OPEN or self._perMessageCompress is not None:
            server_send(self, content, binary)
            return
        if content != last["text"]:
            last["frame"] = self.factory.prepareMessage(content.encode("utf8"))
            last["text"] = content
        if self.send_queue:
            # autobahn's own queue (chopped or synchronous sends) goes first.
            self.sendPreparedMessage(last["frame"])
        else:
            write_now(self.transport, last["frame"].payloadHybi)

    protocol_class.serverSend = serverSend
    protocol_class._frames_once = True


def write_now(transport: Any, data: bytes) -> None:
    """`transport.write(data)`, but written to the socket at once when nothing waits to be
    written before it. Twisted buffers every write and has the event loop watch the socket
    until it can write, then stop watching: two epoll_ctl calls and a wake-up for each frame
    to each socket, half of daphne's time in a room's fan-out. What the socket does not take
    (a client that reads slowly) is left to Twisted, as before: buffered, and counted against
    the producers of the send budgets."""
    if (
        isinstance(transport, tcp.Connection)
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and not transport._tempDataLen
        and transport.offset == len(transport.dataBuffer)
    ):
        sent = transport.writeSomeData(data)
        # An int, or the error the connection was lost with (Twisted finds it on its own).
        if isinstance(sent, int):
            if sent == len(data):
                return
            data = data[sent:]
    transport.write(data)


@implementer(IPushProducer)
class SendBudget:
    """A push producer on one websocket's transport. Twisted pauses it once the transport
    holds more than its buffer size unsent (64 KiB) and resumes it when that drained: the
    bytes sent while paused are the ones the client is not reading. They count against the
    socket's `limit` and, with every other socket's of the process, against `total_limit`:
    however many sockets stop reading, the process holds at most that much for them."""

    unread_in_process: ClassVar[int] = 0

    def __init__(self, limit: int, total_limit: int) -> None:
        self.limit = limit
        self.total_limit = total_limit
        self.paused = False
        self.unread = 0
        self.exceeded = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._forget()

    def stopProducing(self) -> None:
        # The connection is gone, and what it held with it.
        self.paused = True
        self._forget()

    def _forget(self) -> None:
        SendBudget.unread_in_process -= self.unread
        self.unread = 0

    def take(self, size: int) -> bool:
        """Whether `size` more bytes may be sent."""
        if self.exceeded:
            return False
        if self.paused:
            self.unread += size
            SendBudget.unread_in_process += size
            self.exceeded = (
                self.unread > self.limit or SendBudget.unread_in_process > self.total_limit
            )
        return not self.exceeded


def bound_websocket_send_buffers(protocol_class: Any) -> None:
    """Close a websocket with Close.TOO_SLOW once WEBSOCKETS["SEND_BUFFER_MAX"] bytes were
    sent to it while its transport was full, or once the sockets of the process that do not
    read hold WEBSOCKETS["SEND_BUFFER_TOTAL_MAX"] together (the one whose send goes past it).
    What comes after is dropped: the client reconnects (with `?since=` on the chat) and gets
    it from the database. Its close frame waits behind what it did not read; autobahn drops
    the connection when the client does not answer the close within its close handshake
    timeout."""
    if getattr(protocol_class, "_send_bounded", False):
        return
    on_open, server_send = protocol_class.onOpen, protocol_class.serverSend

    def onOpen(self: Any) -> None:
        on_open(self)
        self.send_budget = SendBudget(
            int(settings.WEBSOCKETS["SEND_BUFFER_MAX"]),
            int(settings.WEBSOCKETS["SEND_BUFFER_TOTAL_MAX"]),
        )
        # The HTTP channel that took the upgrade request is still the transport's producer,
        # though it handed the transport over (daphne's WebRequest.process).
        if getattr(self.transport, "producer", None) is not None:
            self.transport.unregisterProducer()
        self.transport.registerProducer(self.send_budget, True)

    def serverSend(self: Any, content: Any, binary: bool = False) -> None:
        budget: SendBudget | None = getattr(self, "send_budget", None)
        if budget is not None and not budget.take(len(content)):
            if not getattr(self, "_closing_slow", False):
                self._closing_slow = True
                logger.warning(
                    "websocket %s closed: its client left %d bytes unread, the process's "
                    "sockets %d (limits %d and %d)",
                    self.path.decode("ascii", "replace"),
                    budget.unread,
                    SendBudget.unread_in_process,
                    budget.limit,
                    budget.total_limit,
                )
                self.sendClose(code=int(Close.TOO_SLOW), reason="too slow: reconnect")
            return
        try:
            server_send(self, content, binary)
        except Disconnected:
            # The client left, or the socket is closing, while the application still sent:
            # there is no one to deliver to, and the application hears of it on its own.
            return

    protocol_class.onOpen = onOpen
    protocol_class.serverSend = serverSend
    protocol_class._send_bounded = True

"""What this project changes in daphne, its ASGI server (and runserver's): applied when the
ASGI application is imported (project/asgi.py), and a no-op under another server.

- Twisted's second parse of every upload is turned off (`skip_twisted_form_parsing`).
- Each websocket gets a bound on the bytes waiting to be written to its client
  (`bound_websocket_send_buffers`): a client that stops reading would otherwise make daphne
  buffer every frame sent to it, without limit.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from django.conf import settings
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from wire.close import Close

logger = logging.getLogger(__name__)


def tune_daphne() -> None:
    try:
        from daphne import http_protocol, ws_protocol
    except ImportError:  # served by another ASGI server
        return
    skip_twisted_form_parsing(http_protocol.WebRequest)
    bound_websocket_send_buffers(ws_protocol.WebSocketProtocol)


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


@implementer(IPushProducer)
class SendBudget:
    """A push producer on one websocket's transport. Twisted pauses it once the transport
    holds more than its buffer size unsent (64 KiB) and resumes it when that drained: the
    bytes sent while paused are the ones the client is not reading."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.paused = False
        self.unread = 0
        self.exceeded = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.unread = 0

    def stopProducing(self) -> None:
        self.paused = True

    def take(self, size: int) -> bool:
        """Whether `size` more bytes may be sent."""
        if self.exceeded:
            return False
        if self.paused:
            self.unread += size
            self.exceeded = self.unread > self.limit
        return not self.exceeded


def bound_websocket_send_buffers(protocol_class: Any) -> None:
    """Close a websocket with Close.TOO_SLOW once WEBSOCKETS["SEND_BUFFER_MAX"] bytes were
    sent to it while its transport was full. What comes after is dropped: the client
    reconnects (with `?since=` on the chat) and gets it from the database. Its close frame
    waits behind what it did not read; autobahn drops the connection when the client does
    not answer the close within its close handshake timeout."""
    if getattr(protocol_class, "_send_bounded", False):
        return
    on_open, server_send = protocol_class.onOpen, protocol_class.serverSend

    def onOpen(self: Any) -> None:
        on_open(self)
        self.send_budget = SendBudget(int(settings.WEBSOCKETS["SEND_BUFFER_MAX"]))
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
                    "websocket %s closed: its client left over %d bytes unread",
                    self.path.decode("ascii", "replace"),
                    budget.limit,
                )
                self.sendClose(code=int(Close.TOO_SLOW), reason="too slow: reconnect")
            return
        server_send(self, content, binary)

    protocol_class.onOpen = onOpen
    protocol_class.serverSend = serverSend
    protocol_class._send_bounded = True

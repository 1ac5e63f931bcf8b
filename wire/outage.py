"""Something a process depends on (Redis, the database) going away and coming back, logged as
its two transitions: a warning at the first failed call, a line at the first call that works
again, however many calls failed between. journald then keeps one line per event, where a
line per retry or per request would bury it."""

from __future__ import annotations

import logging
import threading
import time

from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What a call fails with while PostgreSQL restarts or Redis fails over: a moment's outage, not
# a bug of the site. A request is answered 503 (project.views.server_error), a websocket frame
# an `unavailable` error and a websocket connect Close.UNAVAILABLE: try again shortly.
OUTAGES = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
# How long a client is told to wait before it tries again (Retry-After, `retry_after`).
RETRY_AFTER = 5
# What the client is told meanwhile (API, page, websocket frame alike).
UNAVAILABLE_MESSAGE = (
    "the site cannot reach its database or its message broker just now: try again in a moment"
)


class Outage:
    """The state of one dependency as one caller sees it: answering, or failing since when."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self.logger = logger
        self.since: float | None = None
        self.failures = 0
        # Views call from several threads: the transition is logged by one of them.
        self.lock = threading.Lock()

    @property
    def failing(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException | str) -> None:
        """A call failed: logged if `what` answered until now (a traceback for an exception)."""
        with self.lock:
            self.failures += 1
            if self.since is not None:
                return
            self.since = time.monotonic()
        if isinstance(error, BaseException):
            self.logger.warning(
                "%s failing: %s: %s", self.what, type(error).__name__, error, exc_info=error
            )
        else:
            self.logger.warning("%s failing: %s", self.what, error)

    def answered(self, where: str = "") -> None:
        """A call worked: logged if `what` was failing, with for how long (and `where` it
        answered, when that may have changed: a Sentinel's new primary)."""
        if self.since is None:
            return  # The common case, called for every answer: no lock taken.
        with self.lock:
            if self.since is None:
                return
            took, failures = time.monotonic() - self.since, self.failures
            self.since, self.failures = None, 0
        self.logger.info(
            "%s back after %.1f s (%d calls failed)%s",
            self.what,
            took,
            failures,
            f" at {where}" if where else "",
        )

"""What every websocket of the site does the same way (`SiteConsumer`), and each server
process's registry of its sockets (`SocketHub`).

- Only a logged-in user connects (else: closed with Close.UNAUTHENTICATED); at most
  WEBSOCKETS["PER_USER"] sockets of one user in one server process, and at most
  WEBSOCKETS["CONNECT_RATE"] connects of one user per WEBSOCKETS["CONNECT_WINDOW"] seconds
  across the site (else: Close.TOO_MANY), so no user can hold a server's memory.
- The session is checked again every WEBSOCKETS["SESSION_RECHECK"] seconds, and at once when
  its user logs out, changes their password or is deactivated (wire/signals.py tells the
  user's sockets through the hubs): a socket whose session no longer logs its user in is
  closed with Close.UNAUTHENTICATED.
- A frame from the client must be a JSON object of at most WEBSOCKETS["FRAME_MAX_BYTES"]
  bytes; anything else gets a `bad_frame` error and the socket stays open.
- While the database or Redis does not answer (wire.outage.OUTAGES), a connect is closed with
  Close.UNAVAILABLE (`OutageGuard`, around the websockets' application) and a frame gets an
  `unavailable` error with `retry_after` (the socket stays open); the process's log says so
  once when it begins and once when it ends, not a traceback a socket.
- In the server (project/server.py), a socket whose client does not read is closed with
  Close.TOO_SLOW once WEBSOCKETS["SEND_BUFFER_MAX"] bytes wait for it, or once the process's
  sockets that do not read hold WEBSOCKETS["SEND_BUFFER_TOTAL_MAX"] together.

The hub is the process's one member of the channel-layer groups `sockets.user.<id>`, for the
users it has sockets of: a message to a user's group reaches every process that has a socket
of theirs once, and the hub hands it to those sockets (no channel per connection): a session
check to every socket, anything else (with the `user` it is for) to `user_message()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import weakref
from importlib import import_module
from typing import Any

from channels.auth import AuthMiddleware
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
)
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.utils.crypto import constant_time_compare

from wire import ratelimit
from wire.batching import Batched, per_loop
from wire.close import Close
from wire.errors import BAD_FRAME, ERROR, UNAVAILABLE, error_payload
from wire.outage import OUTAGES, RETRY_AFTER, UNAVAILABLE_MESSAGE, Outage

logger = logging.getLogger(__name__)

sockets_outage = Outage("websockets' database or message broker", logger)

SOCKETS_RECHECK = "sockets.recheck"
# After the layer fails (Redis away), wait this long, doubling up to the maximum, before trying.
RETRY_FIRST, RETRY_MAX = 0.5, 10.0
# The users' group joins and leaves one process asks of the layer at once.
LAYER_IN_FLIGHT = 50
# A user's group is left this many seconds after their last socket here closed: one that
# comes back meanwhile (a page reloaded, every page after a network blip) finds it joined,
# and the layer is asked nothing (in a reconnect storm, three Redis commands a socket).
GROUP_LEAVE_GRACE = 10.0
# The sessions read in one statement at most (SQLite takes 999 values a statement).
LOGINS_AT_ONCE = 500


def logins_of(sessions: list[Any]) -> list[Any]:
    """Channels' get_user for each of these session stores (the user whose id the session
    holds, if their backend is still one of AUTHENTICATION_BACKENDS and the session's hash
    still matches theirs; else nobody, and a session whose hash does not match is flushed),
    with the reads of them all made together where the session engine and the backends can:
    a SessionStore with `load_many(stores)` and a backend with `get_users(ids)` (a reconnect
    storm's connects arriving at once cost two statements, not two each). Returns each
    store's user, in order (None for nobody)."""
    load_many = getattr(import_module(settings.SESSION_ENGINE).SessionStore, "load_many", None)
    if load_many is not None:
        load_many(sessions)
    user_pk = get_user_model()._meta.pk
    claims: list[tuple[str, Any] | None] = []
    for session in sessions:
        try:
            path = session[BACKEND_SESSION_KEY]
            claims.append((path, user_pk.to_python(session[SESSION_KEY])))
        except (KeyError, ValidationError):
            claims.append(None)
    wanted: dict[str, set[Any]] = {}
    for path, user_id in filter(None, claims):
        if path in settings.AUTHENTICATION_BACKENDS:
            wanted.setdefault(path, set()).add(user_id)
    found: dict[tuple[str, Any], Any] = {}
    for path, user_ids in wanted.items():
        backend = load_backend(path)
        if hasattr(backend, "get_users"):
            users = backend.get_users(user_ids)
        else:
            users = {user_id: backend.get_user(user_id) for user_id in user_ids}
        found.update(((path, user_id), user) for user_id, user in users.items())
    logins: list[Any] = []
    handed: set[tuple[str, Any] | None] = set()
    for session, claim in zip(sessions, claims, strict=True):
        user = found.get(claim) if claim is not None else None
        if user is not None and not _hash_matches(session, user):
            session.flush()
            user = None
        if user is not None:
            # Each socket its own instance, as each request has.
            user = copy.copy(user) if claim in handed else user
            handed.add(claim)
        logins.append(user)
    return logins


def _hash_matches(session: Any, user: Any) -> bool:
    """Whether the session still holds the user's hash (not after a password change)."""
    if not hasattr(user, "get_session_auth_hash"):
        return True
    session_hash = session.get(HASH_SESSION_KEY)
    return bool(session_hash) and constant_time_compare(session_hash, user.get_session_auth_hash())


login_reads = per_loop(lambda: Batched(logins_of, most=LOGINS_AT_ONCE))


async def login_of(session: Any) -> Any:
    """The user this session store logs in (else AnonymousUser), as Channels' get_user, read
    in the connect pool together with the other sessions' that come meanwhile."""
    return await login_reads().add_one(session) or AnonymousUser()


class PooledAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware, reading the session and the user in the connect pool with
    the other connects' that come at once (login_of): on Channels' one database thread, the
    session reads of a reconnect storm queued behind each other and behind every other
    socket's database calls."""

    async def resolve_scope(self, scope: Any) -> None:
        scope["user"]._wrapped = await login_of(scope["session"]._wrapped)


def auth_stack(inner: Any) -> Any:
    """Channels' AuthMiddlewareStack, with PooledAuthMiddleware."""
    return CookieMiddleware(SessionMiddleware(PooledAuthMiddleware(inner)))


def user_group(user_id: int) -> str:
    """The channel-layer group of the hubs holding a socket of this user."""
    return f"sockets.user.{user_id}"


def session_digest(session_key: str | None) -> str:
    """A session key as it may travel through the layer: hashed, never the key itself."""
    return hashlib.sha256((session_key or "").encode()).hexdigest()[:32] if session_key else ""


class BadFrame(ValueError):
    """A frame that is not a JSON object the socket can take; the text says why."""


class SocketHub:
    """This process's sockets, by user, and its one channel in the layer for them."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        # Group joins and leaves asked of the layer at once, each on a connection of its own:
        # a reconnect storm's thousand opened as many connections to Redis (each a TCP
        # connect and a handshake, on a loop already behind), and at 5,000 they timed out.
        self.slots = asyncio.Semaphore(LAYER_IN_FLIGHT)
        self.by_user: dict[int, set[SiteConsumer]] = {}
        # The users whose group the channel is in, and those whose group it is leaving.
        self.grouped: set[int] = set()
        self.departures: dict[int, asyncio.Task[None]] = {}
        self.leave_grace = GROUP_LEAVE_GRACE
        self.channel = ""
        self.receiver: asyncio.Task[None] | None = None
        # Session checks under way, kept referenced until done (the loop holds tasks weakly).
        self.checks: set[asyncio.Task[None]] = set()

    def join(self, socket: SiteConsumer) -> bool:
        """Count the socket in; False if its user has as many open here as allowed."""
        sockets = self.by_user.setdefault(socket.user.pk, set())
        if len(sockets) >= int(settings.WEBSOCKETS["PER_USER"]):
            return False
        sockets.add(socket)
        return True

    async def leave(self, socket: SiteConsumer) -> None:
        user_id = socket.user.pk
        sockets = self.by_user.get(user_id)
        if sockets is None:
            return
        sockets.discard(socket)
        if not sockets:
            del self.by_user[user_id]
            if user_id in self.grouped and user_id not in self.departures:
                self.departures[user_id] = asyncio.create_task(self.depart(user_id))

    async def depart(self, user_id: int) -> None:
        """Leave the user's group, unless a socket of theirs came back within the grace."""
        try:
            await asyncio.sleep(self.leave_grace)
            if user_id in self.by_user:
                return
            self.grouped.discard(user_id)
            try:
                async with self.slots:
                    await self.layer.group_discard(user_group(user_id), self.channel)
            except Exception:
                logger.warning("user=%s group not left", user_id, exc_info=True)
        finally:
            del self.departures[user_id]

    async def subscribe(self, user_id: int, *, renew: bool = True) -> None:
        """Join the user's group; again if `renew` (a group's membership expires in the
        layer, and a restarted Redis forgets it), else only if the channel is not in it. A
        layer that fails is only logged: the sockets' own periodic checks still end a
        session that ended."""
        departing = self.departures.get(user_id)
        if departing is not None and user_id not in self.grouped:
            # Being left: joined again once that is done, not before.
            await asyncio.shield(departing)
        if user_id in self.grouped and not renew:
            return
        try:
            if not self.channel:
                # The default prefix: channels-redis receives every process-local channel of a
                # layer through one key, by its prefix, one receiver at a time.
                self.channel = await self.layer.new_channel()
                self.receiver = asyncio.create_task(self.receive())
            async with self.slots:
                await self.layer.group_add(user_group(user_id), self.channel)
            self.grouped.add(user_id)
        except Exception:
            logger.warning("user=%s sockets not subscribed to their group", user_id, exc_info=True)

    async def receive(self) -> None:
        retry = RETRY_FIRST
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:
                logger.warning("socket hub cannot receive; retrying in %.1f s", retry)
                await asyncio.sleep(retry)
                retry = min(RETRY_MAX, retry * 2)
                continue
            retry = RETRY_FIRST
            if message.get("type") == SOCKETS_RECHECK:
                for socket in list(self.by_user.get(message.get("user", 0), ())):
                    check = asyncio.create_task(socket.recheck_session(message.get("ended", "")))
                    self.checks.add(check)
                    check.add_done_callback(self.checks.discard)
                continue
            # Any other message to a user's group is for the app's sockets to take or leave.
            for socket in list(self.by_user.get(message.get("user", 0), ())):
                try:
                    await socket.user_message(message)
                except Exception:
                    logger.warning("user=%s socket did not take a %r", socket.user.pk, message)


# Hubs belong to the event loop their tasks run on.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SocketHub] = weakref.WeakKeyDictionary()


def socket_hub() -> SocketHub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = SocketHub(get_channel_layer())
    return hub


class OutageGuard:
    """The websockets' ASGI application wrapped: a socket whose connect fails on an outage
    (wire.outage.OUTAGES: the session's read in Channels' AuthMiddleware, the room's in a
    consumer) is closed with Close.UNAVAILABLE, and the outage logged once, instead of the
    server's "Exception inside application" and traceback a socket. A frame's failure is the
    consumer's to answer (SiteConsumer.receive); past the connect, one that escapes it closes
    the socket the same way."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        accepted = False

        async def sending(message: dict[str, Any]) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept":
                accepted = True
                sockets_outage.answered()
            await send(message)

        try:
            await self.application(scope, receive, sending)
        except OUTAGES as error:
            sockets_outage.failed(error)
            with contextlib.suppress(Exception):
                # Accepted first, as SiteConsumer.refuse does, so that the page sees the code.
                if not accepted:
                    await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": int(Close.UNAVAILABLE)})


def _session_store(session_key: str | None) -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


class SiteConsumer(AsyncWebsocketConsumer):
    """A websocket of a logged-in user, bounded as the module says. Subclasses implement
    `start()` (accept, then send what the socket begins with), `stop()` (undo what start()
    joined; called once, however the socket ends) and `receive_frame(frame)`."""

    # What the socket's error frames are called ("chat.error" for the chat's).
    error_type = ERROR
    user: Any
    hub: SocketHub | None = None
    rechecker: asyncio.Task[None] | None = None
    ended = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(Close.UNAUTHENTICATED)
            return
        self.user = user
        options = settings.WEBSOCKETS
        wait = await ratelimit.hit(
            f"ws:connect:{user.pk}",
            limit=int(options["CONNECT_RATE"]),
            window=float(options["CONNECT_WINDOW"]),
        )
        hub = socket_hub()
        if wait is not None or not hub.join(self):
            logger.warning(
                "user=%s websocket %s refused: too many sockets or connects",
                user.pk,
                self.scope.get("path"),
            )
            await self.refuse(Close.TOO_MANY)
            return
        self.hub = hub
        await hub.subscribe(user.pk, renew=False)
        self.rechecker = asyncio.create_task(self.recheck_every(options["SESSION_RECHECK"]))
        await self.start()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without the close_old_connections it runs before every message
        (the connect, each frame, the close) on Channels' one database thread: every socket's
        every frame waited there in one line, behind the others' database calls. This
        consumer's database calls each run in a thread that closes old connections itself
        (database_sync_to_async, connect_db)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def refuse(self, code: int) -> None:
        # Accept first: a socket closed during the handshake shows the browser a bare 403,
        # while a close code tells the page why (and whether reconnecting will help).
        await self.accept()
        await self.close(code=code)

    async def start(self) -> None:
        await self.accept()

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        # autobahn (daphne) takes a close code of type int only: a Close member is refused.
        if isinstance(code, int) and not isinstance(code, bool):
            code = int(code)
        await super().close(code=code, reason=reason)

    async def stop(self) -> None:
        """Undo what start() joined."""

    async def disconnect(self, code: int) -> None:
        await self.end()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A consumer that fails never gets its disconnect: what it joined must end anyway.
            await self.end()

    async def end(self) -> None:
        """Leave everything the socket joined; the second call finds nothing to do."""
        if self.ended:
            return
        self.ended = True
        if self.rechecker is not None:
            self.rechecker.cancel()
        if self.hub is not None:
            await self.hub.leave(self)
            await self.stop()

    # The session.

    async def recheck_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.hub is not None:
                await self.hub.subscribe(self.user.pk)
            await self.recheck_session()

    async def recheck_session(self, ended: str = "") -> None:
        """Close the socket if its session no longer logs its user in (`ended`: the digest
        of a session that just ended, which needs no lookup)."""
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if ended and ended == session_digest(session_key):
            still = None
        else:
            try:
                still = await login_of(_session_store(session_key))
            except Exception:
                logger.warning("user=%s session not checked", self.user.pk, exc_info=True)
                return
        if still is None or still.pk != self.user.pk:
            logger.info("user=%s websocket %s closed: logged out", self.user.pk, self.scope["path"])
            with contextlib.suppress(Exception):
                await self.close(code=Close.UNAUTHENTICATED)
            await self.end()

    # Frames.

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = self.decode(text_data)
        except BadFrame as bad:
            await self.send_error(code=BAD_FRAME, error=str(bad))
            return
        try:
            await self.receive_frame(frame)
        except OUTAGES as error:
            sockets_outage.failed(error)
            client_id = frame.get("client_id")
            await self.send_error(
                code=UNAVAILABLE,
                error=UNAVAILABLE_MESSAGE,
                retry_after=RETRY_AFTER,
                **({"client_id": client_id} if isinstance(client_id, str) else {}),
            )
        else:
            sockets_outage.answered()

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        await self.send_error(code=BAD_FRAME, error="this socket only sends; nothing to receive")

    async def user_message(self, message: dict[str, Any]) -> None:
        """A message to this socket's user's group (`user_group`), other than the session
        checks: an app's socket sends what it wants of it to its client."""

    @staticmethod
    def decode(text_data: str | None) -> dict[str, Any]:
        """The frame as a JSON object, or BadFrame saying why not."""
        limit = int(settings.WEBSOCKETS["FRAME_MAX_BYTES"])
        if text_data is None:
            raise BadFrame("Frames must be JSON text, not binary.")
        if len(text_data) > limit:
            raise BadFrame(f"Frame too large: the limit is {limit} bytes.")
        try:
            frame = json.loads(text_data)
        except RecursionError:
            raise BadFrame("Frames must be JSON objects; this one is nested too deeply.") from None
        except ValueError:
            raise BadFrame("Frames must be JSON objects; this one is not JSON.") from None
        if not isinstance(frame, dict):
            raise BadFrame("Frames must be JSON objects.")
        return frame

    async def send_json(self, content: Any) -> None:
        await self.send(text_data=json.dumps(content))

    async def send_error(self, *, code: str, error: str, **extra: Any) -> None:
        await self.send_json(error_payload(type=self.error_type, code=code, error=error, **extra))

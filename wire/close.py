"""Websocket close codes of the site, for every socket. Codes 4000-4999 are the
application's own (RFC 6455); each says why the server closed, and whether the page should
reconnect. The pages read them from `wire.context` (`wire.close` in their JavaScript)."""

from enum import IntEnum


class Close(IntEnum):
    # Not a room name the site allows: reconnecting will not help.
    BAD_ROOM = 4400
    # Not logged in (or no longer): the page sends the user to the login page.
    UNAUTHENTICATED = 4401
    # No such room, or not one this user may see (the same answer for both): the page stops.
    NOT_FOUND = 4404
    # The client left too much unread (WEBSOCKETS["SEND_BUFFER_MAX"], or the server's sockets
    # together SEND_BUFFER_TOTAL_MAX): reconnecting (with `?since=` on the chat) gets what it
    # missed from the database.
    TOO_SLOW = 4408
    # Too many sockets of this user on one server, or connects in a short while: the page
    # tries again after a long pause.
    TOO_MANY = 4429
    # The site's database or message broker is away for a moment (PostgreSQL restarting,
    # Redis failing over): the page reconnects after its backoff.
    UNAVAILABLE = 4503

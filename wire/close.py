"""Websocket close codes of the site, for every socket. Codes 4000-4999 are the
application's own (RFC 6455); each says why the server closed, and whether the page should
reconnect. The pages read them from `wire.context` (`wire.close` in their JavaScript)."""

from enum import IntEnum


class Close(IntEnum):
    # Not a room name the site allows: reconnecting will not help.
    BAD_ROOM = 4400
    # Not logged in (or no longer): the page sends the user to the login page.
    UNAUTHENTICATED = 4401

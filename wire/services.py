"""Telling a user's open websockets to check their session again."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from wire.sockets import SOCKETS_RECHECK, session_digest, user_group

logger = logging.getLogger(__name__)


def sockets_recheck(*, user_id: int, ended_session_key: str | None = None) -> None:
    """Every open socket of the user checks its session now (and the one of the session that
    just ended closes without looking). A layer that is away is only logged: each socket
    still checks on its own every WEBSOCKETS["SESSION_RECHECK"] seconds."""
    message = {
        "type": SOCKETS_RECHECK,
        "user": user_id,
        "ended": session_digest(ended_session_key),
    }
    try:
        async_to_sync(get_channel_layer().group_send)(user_group(user_id), message)
    except Exception:
        logger.warning("user=%s sockets not told to check their session", user_id, exc_info=True)

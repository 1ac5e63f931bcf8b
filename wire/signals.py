"""When a session stops being valid, the user's open websockets close at once: on logout, on
a password change (Django then invalidates the user's other sessions) and on deactivation.

The receivers only call the service; the sockets themselves decide (wire/sockets.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest

from wire.services import sockets_recheck

# A save that changes none of these leaves every session as valid as it was.
SESSION_FIELDS = {"password", "is_active"}


@receiver(user_logged_out)
def close_sockets_of_the_ended_session(
    sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    if user is None or request is None:
        return
    sockets_recheck(user_id=user.pk, ended_session_key=request.session.session_key)


@receiver(post_save, sender=get_user_model())
def recheck_sockets_of_a_changed_user(
    sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    if created or (update_fields is not None and not SESSION_FIELDS & set(update_fields)):
        return
    # After the commit: a socket that checks sooner would still find the old password.
    transaction.on_commit(partial(sockets_recheck, user_id=instance.pk), robust=True)

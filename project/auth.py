"""Django's ModelBackend (AUTHENTICATION_BACKENDS), its user read written out."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User

# The path that sessions logged in before UserBackend recorded (project/sessions.py reads it
# as UserBackend's, so that nobody is logged out by the change).
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
USER_BACKEND = "project.auth.UserBackend"

# Django's User (auth_user), every column in order, as the ORM's get() by pk reads it, for
# the ids in place of `{}`.
USERS_READ_SQL = (
    "SELECT id, password, last_login, is_superuser, username, first_name, last_name, email,"
    " is_staff, is_active, date_joined FROM auth_user WHERE id IN ({})"
)


class UserBackend(ModelBackend):
    """ModelBackend, the same users and the same rules (an inactive user is nobody); the read
    that every logged-in request and every websocket connect makes is written out: the ORM's
    building of it cost 0.25 ms of the server's CPU more (a reconnect storm is thousands)."""

    def get_user(self, user_id: Any) -> User | None:
        user = next(iter(User.objects.raw(USERS_READ_SQL.format("%s"), [user_id])), None)
        return user if user is not None and self.user_can_authenticate(user) else None

    def get_users(self, user_ids: Collection[int]) -> dict[int, User]:
        """get_user() for each of these ids, in one statement: the users who may log in, by id."""
        if not user_ids:
            return {}
        read = USERS_READ_SQL.format(", ".join(["%s"] * len(user_ids)))
        users = User.objects.raw(read, list(user_ids))
        return {user.pk: user for user in users if self.user_can_authenticate(user)}

    async def aget_user(self, user_id: Any) -> User | None:
        return await sync_to_async(self.get_user)(user_id)

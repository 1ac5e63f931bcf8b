"""Django's database sessions (SESSION_ENGINE), read with a written-out statement."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone

from project.auth import MODEL_BACKEND, USER_BACKEND

# Django's Session model (django_session), whose get() by key and expiry this is.
SESSION_READ_SQL = (
    "SELECT session_data FROM django_session WHERE session_key = %s AND expire_date > %s"
)


class SessionStore(db.SessionStore):
    """Django's database sessions, the same rows and the same rules; the read that every
    logged-in request and every websocket connect makes is written out, as the ORM would
    write it: the ORM's building of it cost 0.5 ms of the server's CPU more (a reconnect
    storm is thousands of them)."""

    def decode(self, session_data: bytes | str) -> dict[str, Any]:
        session: dict[str, Any] = super().decode(session_data)
        if session.get(BACKEND_SESSION_KEY) == MODEL_BACKEND:
            # Logged in before UserBackend took ModelBackend's place: the same users.
            session[BACKEND_SESSION_KEY] = USER_BACKEND
        return session

    def _get_session_from_db(self) -> Any:
        if self.session_key is None:  # not a key (SessionBase checked it): nothing to read
            return None
        model = self.model
        connection = connections[router.db_for_read(model)]
        with connection.cursor() as cursor:
            cursor.execute(
                SESSION_READ_SQL,
                [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:
            # As Django's: an unknown or expired key is not reused for the new session.
            self._session_key = None
            return None
        return model(session_key=self.session_key, session_data=row[0])

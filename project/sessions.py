"""Django's database sessions (SESSION_ENGINE), read with a written-out statement."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone

from project.auth import MODEL_BACKEND, USER_BACKEND

# Django's Session model (django_session), whose get() by key and expiry this is, for the
# keys in place of `{}`.
SESSIONS_READ_SQL = (
    "SELECT session_key, session_data FROM django_session"
    " WHERE session_key IN ({}) AND expire_date > %s"
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
        data = self.read_data([self.session_key]).get(self.session_key)
        if data is None:
            # As Django's: an unknown or expired key is not reused for the new session.
            self._session_key = None
            return None
        return self.model(session_key=self.session_key, session_data=data)

    @classmethod
    def load_many(cls, stores: Iterable[Any]) -> None:
        """load() for each of these stores (of this class; any other is left to load itself),
        their rows read in one statement: each then holds its session's data or, for a key
        that is unknown or expired, no data and no key, as load() leaves it. A store already
        loaded is left as it is. (wire.sockets reads the sessions of websockets that connect
        at once this way.)"""
        due = [
            (store, store.session_key)
            for store in stores
            if isinstance(store, cls)
            and store.session_key is not None
            and not hasattr(store, "_session_cache")
        ]
        if not due:
            return
        found = cls.read_data({key for _, key in due})
        for store, key in due:
            data = found.get(key)
            if data is None:
                store._session_key = None
            store._session_cache = {} if data is None else store.decode(data)  # type: ignore[attr-defined]

    @classmethod
    def read_data(cls, keys: Collection[str]) -> dict[str, str]:
        """The encoded data of the sessions of these keys that have not expired, by key."""
        connection = connections[router.db_for_read(cls.get_model_class())]
        with connection.cursor() as cursor:
            cursor.execute(
                SESSIONS_READ_SQL.format(", ".join(["%s"] * len(keys))),
                [*keys, connection.ops.adapt_datetimefield_value(timezone.now())],
            )
            return dict(cursor.fetchall())

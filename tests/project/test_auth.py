"""The site's authentication backend (project/auth.py) reads users as Django's ModelBackend
does, and sessions logged in by ModelBackend before it still log their user in."""

from __future__ import annotations

from typing import Any

import pytest
from channels.auth import get_user as channels_get_user
from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.test import Client

from project.auth import MODEL_BACKEND, USER_BACKEND, USERS_READ_SQL, UserBackend
from project.sessions import SessionStore
from tests.clients import session_logged_in
from wire.sockets import logins_of

pytestmark = pytest.mark.django_db


def test_the_written_out_read_names_every_column_of_the_user_in_order() -> None:
    # A Django that adds a field to User fails here, not in a login.
    columns, source = USERS_READ_SQL.removeprefix("SELECT ").split(" FROM ")
    assert [column.strip() for column in columns.split(",")] == [
        field.column for field in User._meta.concrete_fields
    ]
    assert source.split()[0] == User._meta.db_table


def test_a_user_reads_as_the_orm_reads_them(user: Any) -> None:
    user.first_name, user.email = "Älice", "alice@example.com"
    user.save()
    read = UserBackend().get_user(user.pk)
    expected = ModelBackend().get_user(user.pk)
    assert read is not None
    assert expected is not None
    for name in (field.attname for field in User._meta.concrete_fields):
        assert getattr(read, name) == getattr(expected, name), name
    assert read.get_session_auth_hash() == expected.get_session_auth_hash()
    # A model instance as the ORM makes it: saving it updates the row, not a new one.
    assert read._state.db == "default"
    assert not read._state.adding
    read.last_name = "Liddell"
    read.save()
    assert User.objects.count() == 1
    assert User.objects.get(pk=user.pk).last_name == "Liddell"


def test_an_unknown_or_inactive_user_is_nobody(user: Any) -> None:
    backend = UserBackend()
    assert backend.get_user(user.pk + 1000) is None
    user.is_active = False
    user.save()
    assert backend.get_user(user.pk) is None
    assert backend.get_user(str(user.pk)) is None


def test_a_log_in_records_the_backend_and_the_page_knows_the_user(user: Any, password: str) -> None:
    client = Client()
    response = client.post("/accounts/login/", {"username": user.username, "password": password})
    assert response.status_code == 302, response.content[:300]
    assert client.session[BACKEND_SESSION_KEY] == USER_BACKEND
    assert client.get("/chat/").status_code == 200
    assert client.get("/api/uploads/").json() is not None


def test_a_session_logged_in_by_model_backend_still_logs_its_user_in(user: Any) -> None:
    # A session as Django's login() wrote it before UserBackend.
    key = session_logged_in(user, backend=MODEL_BACKEND, store=DjangoSessionStore)
    # A page: Django's authentication middleware.
    client = Client()
    client.cookies["sessionid"] = key
    response = client.get("/chat/")
    assert response.status_code == 200
    assert response.wsgi_request.user == user
    # A websocket: Channels' get_user, and the sockets' reads of many at once.
    socket_user = channels_get_user.func({"session": SessionStore(key)})
    assert socket_user.is_authenticated
    assert socket_user.pk == user.pk
    assert logins_of([SessionStore(key)])[0].pk == user.pk
    # Not when its password changed since (the session's hash no longer matches).
    user.set_password("another-long-password-7")
    user.save()
    assert not channels_get_user.func({"session": SessionStore(key)}).is_authenticated
    assert logins_of([SessionStore(key)]) == [None]

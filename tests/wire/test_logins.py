"""The users that websockets' sessions log in (wire.sockets.logins_of, login_of): the same
answer as Channels' get_user for every kind of session, the reads of many made together."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.auth import get_user as channels_get_user
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from project.auth import USER_BACKEND
from project.sessions import SessionStore
from tests.clients import session_logged_in
from wire.sockets import login_of, logins_of

pytestmark = pytest.mark.django_db


def every_kind_of_session(user: Any, other_user: Any, django_user_model: Any) -> dict[str, str]:
    """A key of each kind of session a socket may come with, by what it is."""
    keys = {"user": session_logged_in(user), "other user": session_logged_in(other_user)}
    expired = session_logged_in(user)
    Session.objects.filter(session_key=expired).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    keys["expired"] = expired
    keys["unknown"] = "x" * 32
    anonymous = SessionStore()
    anonymous["seen"] = True
    anonymous.create()
    assert anonymous.session_key is not None
    keys["anonymous"] = anonymous.session_key
    keys["backend no longer used"] = session_logged_in(
        user, backend="django.contrib.auth.backends.RemoteUserBackend"
    )
    inactive = django_user_model.objects.create_user("inactive", password="a-long-password-1")
    keys["inactive"] = session_logged_in(inactive)
    inactive.is_active = False
    inactive.save()
    changed = django_user_model.objects.create_user("changed", password="a-long-password-2")
    keys["password changed since"] = session_logged_in(changed)
    changed.set_password("a-long-password-3")
    changed.save()
    tampered = SessionStore()
    tampered[SESSION_KEY] = "not an id"
    tampered[BACKEND_SESSION_KEY] = USER_BACKEND
    tampered.create()
    assert tampered.session_key is not None
    keys["not an id"] = tampered.session_key
    return keys


def test_each_session_logs_in_whom_channels_get_user_logs_in(
    user: Any, other_user: Any, django_user_model: Any
) -> None:
    keys = every_kind_of_session(user, other_user, django_user_model)
    stores = {kind: SessionStore(key) for kind, key in keys.items() if kind != "not an id"}
    logins = dict(zip(stores, logins_of(list(stores.values())), strict=True))
    for kind in stores:
        expected = channels_get_user.func({"session": SessionStore(keys[kind])})
        assert (logins[kind].pk if logins[kind] else None) == expected.pk, kind
    assert {kind for kind, login in logins.items() if login} == {"user", "other user"}
    # A session whose user's password changed is ended, as Channels' get_user ends it.
    assert not Session.objects.filter(session_key=keys["password changed since"]).exists()
    assert stores["password changed since"].session_key is None


def test_a_session_with_no_user_id_in_it_is_nobody_and_the_others_still_log_in(
    user: Any, other_user: Any, django_user_model: Any
) -> None:
    # Channels' get_user raises for it; here it would fail every connect read with it.
    keys = every_kind_of_session(user, other_user, django_user_model)
    tampered, fine = SessionStore(keys["not an id"]), SessionStore(keys["user"])
    nobody, fine_user = logins_of([tampered, fine])
    assert nobody is None
    assert fine_user.pk == user.pk


def test_the_sessions_and_their_users_are_two_statements_however_many(
    user: Any, other_user: Any
) -> None:
    stores = [SessionStore(session_logged_in(person)) for person in [user, other_user] * 10]
    with CaptureQueriesContext(connection) as statements:
        logins = logins_of(stores)
    assert len(statements) == 2, [statement["sql"] for statement in statements]
    assert [login.pk for login in logins] == [user.pk, other_user.pk] * 10


def test_sockets_of_the_same_session_each_have_their_own_user(user: Any) -> None:
    key = session_logged_in(user)
    first, second = logins_of([SessionStore(key), SessionStore(key)])
    assert first == second == user
    assert first is not second
    first.first_name = "changed on one socket"
    assert second.first_name != "changed on one socket"


def test_a_session_already_read_is_not_read_again(user: Any) -> None:
    store = SessionStore(session_logged_in(user))
    assert store[SESSION_KEY] == str(user.pk)
    with CaptureQueriesContext(connection) as statements:
        [login] = logins_of([store])
    assert len(statements) == 1  # its user only
    assert login.pk == user.pk


@pytest.mark.django_db(transaction=True)
async def test_connects_at_once_each_get_their_own_login(user: Any, other_user: Any) -> None:
    keys = await sync_to_async(
        lambda: [session_logged_in(person) for person in [user, other_user] * 5]
    )()
    keys.append("y" * 32)
    found = await asyncio.gather(*(login_of(SessionStore(key)) for key in keys))
    assert [person.pk for person in found] == [user.pk, other_user.pk] * 5 + [None]
    assert not found[-1].is_authenticated

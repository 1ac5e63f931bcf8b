"""The site's sessions (project/sessions.py) read as Django's database sessions do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from project.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_a_session_reads_back_what_django_wrote() -> None:
    written = DjangoSessionStore()
    written["cart"] = {"items": [1, 2], "note": "ünïcode"}
    written.create()
    read = SessionStore(written.session_key)
    assert read.load() == {"cart": {"items": [1, 2], "note": "ünïcode"}}
    assert read.session_key == written.session_key


def test_an_expired_or_unknown_session_is_empty_and_its_key_not_reused() -> None:
    expired = DjangoSessionStore()
    expired["user"] = "someone"
    expired.create()
    Session.objects.filter(session_key=expired.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    for key in (expired.session_key, "x" * 32, None):
        session = SessionStore(key)
        assert session.load() == {}
        # Saving makes a new key: a key the client chose (session fixation) is never used.
        session["after"] = 1
        session.save()
        assert session.session_key not in (key, None)
        assert DjangoSessionStore(session.session_key).load() == {"after": 1}

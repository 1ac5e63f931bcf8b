"""Sign-up, password reset and password change: limited per address (per user for the change),
also while Redis does not answer; the reset mails a link that works and says nothing about
whether an account exists."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.5"
ELSEWHERE = "198.51.100.7"


@pytest.fixture(autouse=True)
def _locmem_mail(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def sign_up(address: str, username: str) -> Any:
    password = "a-long-pass-phrase-9"
    return Client(REMOTE_ADDR=address).post(
        "/accounts/signup/", {"username": username, "password1": password, "password2": password}
    )


def ask_reset(address: str, email: str) -> Any:
    return Client(REMOTE_ADDR=address).post("/accounts/password_reset/", {"email": email})


def assert_refused_with_the_wait(response: Any, action: str) -> None:
    assert response.status_code == 429, response.content[:500]
    assert int(response["Retry-After"]) >= 1
    assert f"Too many attempts to {action}" in response.content.decode()
    assert "Try again in" in response.content.decode()


def test_signup_is_limited_per_address() -> None:
    for n in range(5):
        assert sign_up(ATTACKER, f"bot{n}").status_code == 302
    refused = sign_up(ATTACKER, "bot5")
    assert_refused_with_the_wait(refused, "sign up")
    assert not get_user_model().objects.filter(username="bot5").exists()
    # Another address signs up as usual.
    assert sign_up(ELSEWHERE, "carol").status_code == 302


def test_the_signup_form_itself_is_not_counted() -> None:
    for _ in range(10):
        assert Client(REMOTE_ADDR=ATTACKER).get("/accounts/signup/").status_code == 200
    assert sign_up(ATTACKER, "carol").status_code == 302


def test_limits_hold_while_redis_does_not_answer(settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    statuses = [sign_up(ATTACKER, f"bot{n}").status_code for n in range(6)]
    assert statuses == [302] * 5 + [429]


def test_password_reset_mails_a_link_that_sets_a_new_password(user: Any) -> None:
    user.email = "alice@example.com"
    user.save()
    client = Client(REMOTE_ADDR=ELSEWHERE)
    response = client.post("/accounts/password_reset/", {"email": "ALICE@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body)
    assert link, message.body

    # The link leads to a form (Django swaps the token for a session-bound one first).
    form = client.get(link[1], follow=True)
    assert form.status_code == 200
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-phrase-7", "new_password2": "a-brand-new-phrase-7"},
    )
    assert done.status_code == 302
    assert done["Location"] == "/accounts/reset/done/"
    login = Client().post(
        "/accounts/login/", {"username": "alice", "password": "a-brand-new-phrase-7"}
    )
    assert login.status_code == 302
    # Used once, the link is dead.
    assert b"no longer valid" in Client().get(link[1], follow=True).content


def test_password_reset_answers_the_same_for_an_unknown_address(user: Any) -> None:
    user.email = "alice@example.com"
    user.save()
    known = ask_reset(ELSEWHERE, "alice@example.com")
    unknown = ask_reset(ELSEWHERE, "nobody@example.com")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert len(mail.outbox) == 1
    page = Client().get(unknown["Location"]).content.decode()
    assert "If an account has that address" in page


def test_password_reset_is_limited_per_address_and_per_mailbox(user: Any) -> None:
    user.email = "alice@example.com"
    user.save()
    for n in range(5):
        assert ask_reset(ATTACKER, f"someone{n}@example.com").status_code == 302
    assert_refused_with_the_wait(ask_reset(ATTACKER, "alice@example.com"), "reset a password")
    assert mail.outbox == []

    # One mailbox, asked for from many addresses: three mails an hour at most.
    statuses = [ask_reset(f"192.0.2.{n}", "alice@example.com").status_code for n in range(5)]
    assert statuses == [302, 302, 302, 429, 429]
    assert len(mail.outbox) == 3


def test_password_change_works_and_is_limited_per_user(user: Any, password: str) -> None:
    client = Client(REMOTE_ADDR=ELSEWHERE)
    client.force_login(user)
    page = client.get("/accounts/password_change/")
    assert page.status_code == 200
    assert b"Change password" in page.content
    for n in range(10):
        wrong = client.post(
            "/accounts/password_change/",
            {
                "old_password": f"guess-{n}",
                "new_password1": "x-y-z-1234-q",
                "new_password2": "x-y-z-1234-q",
            },
        )
        assert wrong.status_code == 200
    right = client.post(
        "/accounts/password_change/",
        {
            "old_password": password,
            "new_password1": "x-y-z-1234-q",
            "new_password2": "x-y-z-1234-q",
        },
    )
    assert_refused_with_the_wait(right, "change the password")
    user.refresh_from_db()
    assert user.check_password(password)


def test_password_change_sets_the_new_password(user: Any, password: str) -> None:
    client = Client()
    client.force_login(user)
    done = client.post(
        "/accounts/password_change/",
        {
            "old_password": password,
            "new_password1": "x-y-z-1234-q",
            "new_password2": "x-y-z-1234-q",
        },
    )
    assert done.status_code == 302
    assert done["Location"] == "/accounts/password_change/done/"
    user.refresh_from_db()
    assert user.check_password("x-y-z-1234-q")

"""Log-in lockout through Django's test client: per username from any address, per address for
any usernames, the admin's log-in too, refused without running the password hasher, with a
page that says how long to wait."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.5"
ELSEWHERE = "198.51.100.7"


def access_attempts() -> Any:
    """django-axes' failure rows (imported late: without axes this module still runs, and fails)."""
    from axes.models import AccessAttempt

    return AccessAttempt.objects


def attempt(address: str, username: str, password: str, path: str = "/accounts/login/") -> Any:
    # A client per attempt: a flood carries no cookies, and a refusal must not hang on them.
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


def logged_in(response: Any) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.wsgi_request.session


def assert_refused_with_the_wait(response: Any) -> None:
    assert response.status_code == 429, response.content[:500]
    assert 1 <= int(response["Retry-After"]) <= 15 * 60
    page = response.content.decode()
    assert "Too many attempts to log in" in page
    assert "Try again in 15 minutes" in page
    assert "_auth_user_id" not in response.wsgi_request.session


def test_100_wrong_passwords_then_the_right_one_is_refused_without_hashing(
    counting_hasher: Any, user: Any, password: str
) -> None:
    counting_hasher.runs = 0
    statuses = [attempt(ATTACKER, "alice", f"guess-{n}").status_code for n in range(100)]
    # Five are checked and fail (the fifth reaches the limit and says so); every later one
    # is refused unchecked.
    assert statuses[:4] == [200] * 4
    assert set(statuses[4:]) == {429}
    assert counting_hasher.runs == 5

    right = attempt(ATTACKER, "alice", password)
    assert_refused_with_the_wait(right)
    assert counting_hasher.runs == 5, "a refused attempt ran the password hasher"
    # Refused attempts are not counted again: the flood wrote no more than the five failures.
    assert sum(access_attempts().values_list("failures_since_start", flat=True)) == 5


def test_a_locked_username_is_refused_from_any_address_and_others_go_on(
    user: Any, other_user: Any, password: str
) -> None:
    statuses = [attempt(ATTACKER, "alice", f"guess-{n}").status_code for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    # The username is locked wherever its owner comes from ...
    assert_refused_with_the_wait(attempt(ELSEWHERE, "alice", password))
    # ... while five failures are far from the address's limit (20): bob logs in from there.
    assert logged_in(attempt(ATTACKER, "bob", password))


def test_an_address_past_its_limit_is_refused_for_every_username(
    other_user: Any, password: str
) -> None:
    # Four wrong passwords for each of five names: no username reaches its limit of five,
    # the address reaches its limit of twenty.
    statuses = [
        attempt(ATTACKER, name, f"guess-{n}").status_code
        for name in ["ann", "ben", "cy", "dee", "eve"]
        for n in range(4)
    ]
    assert statuses == [200] * 19 + [429]
    assert_refused_with_the_wait(attempt(ATTACKER, "bob", password))
    # bob himself is not locked: from his own address he logs in.
    assert logged_in(attempt(ELSEWHERE, "bob", password))


def test_the_admin_login_is_locked_too_and_shares_the_count(password: str) -> None:
    get_user_model().objects.create_superuser("root", "root@example.com", password)
    for n in range(3):
        assert attempt(ATTACKER, "root", f"guess-{n}", "/admin/login/").status_code == 200
    assert attempt(ATTACKER, "root", "guess-3").status_code == 200
    assert attempt(ATTACKER, "root", "guess-4").status_code == 429
    for path in ["/admin/login/", "/accounts/login/"]:
        assert_refused_with_the_wait(attempt(ELSEWHERE, "root", password, path))


def test_the_client_cannot_choose_its_address_with_a_header(user: Any, password: str) -> None:
    for n in range(20):
        response = Client(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").post(
            "/accounts/login/", {"username": f"user{n}", "password": "guess"}
        )
        assert response.status_code == (200 if n < 19 else 429)
    assert attempt(ATTACKER, "alice", password).status_code == 429


def test_an_ipv6_client_counts_as_its_64_network(user: Any, password: str) -> None:
    for n in range(20):
        response = attempt(f"2001:db8:5:6::{n + 1:x}", f"user{n}", "guess")
        assert response.status_code == (200 if n < 19 else 429)
    assert attempt("2001:db8:5:6:ffff::1", "alice", password).status_code == 429
    assert logged_in(attempt("2001:db8:5:7::1", "alice", password))


def test_the_lockout_ends_after_the_cool_off(user: Any, password: str) -> None:
    for n in range(5):
        attempt(ATTACKER, "alice", f"guess-{n}")
    assert attempt(ATTACKER, "alice", password).status_code == 429
    # Sixteen minutes later (the failures moved back in time, as the clock would move on).
    for row in access_attempts().all():
        row.attempt_time -= timedelta(minutes=16)
        row.save()
    assert logged_in(attempt(ATTACKER, "alice", password))


def test_the_wait_shown_is_the_time_left(user: Any, password: str) -> None:
    for n in range(5):
        attempt(ATTACKER, "alice", f"guess-{n}")
    access_attempts().update(
        attempt_time=access_attempts().get().attempt_time - timedelta(minutes=12)
    )
    response = attempt(ATTACKER, "alice", password)
    assert response.status_code == 429
    assert "Try again in 3 minutes" in response.content.decode()
    assert 170 <= int(response["Retry-After"]) <= 180


def test_the_test_clients_login_without_a_request_still_works(user: Any, password: str) -> None:
    # Client.login() calls authenticate() without a request: nothing to count by, and axes
    # would refuse it outright; LockoutBackend leaves it to ModelBackend.
    assert Client().login(username="alice", password=password)
    assert not Client().login(username="alice", password="wrong")

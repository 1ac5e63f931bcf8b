"""Accounts and the home page, through Django's test client."""

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db


def test_home_page_invites_a_visitor_to_sign_up(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert b'href="/accounts/signup/"' in response.content
    assert b'name="viewport"' in response.content


def test_signup_creates_an_account_and_logs_in(client: Client) -> None:
    response = client.post(
        "/accounts/signup/",
        {
            "username": "carol",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="carol").exists()
    home = client.get("/")
    assert b"carol" in home.content
    assert b"Log out" in home.content


def test_signup_shows_why_a_password_is_refused(client: Client) -> None:
    response = client.post(
        "/accounts/signup/", {"username": "dave", "password1": "123", "password2": "123"}
    )
    assert response.status_code == 200
    assert b"too short" in response.content
    assert not get_user_model().objects.filter(username="dave").exists()


def test_login_and_logout(client: Client, user: Any, password: str) -> None:
    response = client.post("/accounts/login/", {"username": "alice", "password": password})
    assert response.status_code == 302
    assert b"alice" in client.get("/").content
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert b"Log in" in client.get("/").content


def test_wrong_password_is_refused(client: Client, user: Any) -> None:
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content

"""The log-in lockout in the web unit's own daphne (production settings), reached the way nginx
passes requests on: the client's address in X-Forwarded-For, which daphne --proxy-headers
turns into REMOTE_ADDR."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.deploy.deployment import SITE, Deployment, site_client

pytestmark = pytest.mark.slow

ATTACKER = "203.0.113.5"
ELSEWHERE = "198.51.100.7"


def form_client(web: Any, address: str) -> httpx.Client:
    client = site_client(web, address)
    client.headers["Referer"] = f"https://{SITE}/accounts/login/"
    assert client.get("/accounts/login/").status_code == 200
    return client


def post_login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post(
        "/accounts/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )


def test_a_flood_at_daphne_is_refused_with_the_wait_across_addresses(
    deployment: Deployment, user: Any, other_user: Any, password: str
) -> None:
    web = deployment.web()
    attacker = form_client(web, ATTACKER)
    statuses = [post_login(attacker, "alice", f"guess-{n}").status_code for n in range(100)]
    assert statuses[:4] == [200] * 4
    assert set(statuses[4:]) == {429}

    right = post_login(attacker, "alice", password)
    assert right.status_code == 429
    assert "Try again in 15 minutes" in right.text
    assert 1 <= int(right.headers["Retry-After"]) <= 900
    assert "sessionid" not in right.cookies

    # The owner, from elsewhere: the username stays locked (the policy: per username).
    owner = form_client(web, ELSEWHERE)
    assert post_login(owner, "alice", password).status_code == 429
    # Another user from the attacker's address: five failures are under its limit (20).
    bob = post_login(form_client(web, ATTACKER), "bob", password)
    assert bob.status_code == 302, bob.text
    assert "sessionid" in bob.cookies

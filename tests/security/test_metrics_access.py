"""/metrics behind a load balancer: a client address proves something only where nginx saw it
itself (plain HTTP, its default server, by IP); under the site's name (HTTPS) only the token
does; and a token never travels over plain HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-token-for-prometheus"


def test_over_https_an_allowed_address_is_not_enough(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    # What a forged X-Forwarded-For through a load balancer would make the address.
    for address in ["127.0.0.1", "10.1.2.3"]:
        assert Client(REMOTE_ADDR=address).get("/metrics", secure=True).status_code == 403
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    assert (
        Client(REMOTE_ADDR="203.0.113.7").get("/metrics", secure=True, **bearer).status_code == 200
    )


def test_a_token_over_plain_http_is_refused_and_logged(settings: Any, caplog: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    # Even from an allowed address: the token was exposed on the way.
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics", **bearer).status_code == 403
    assert "token sent over plain HTTP" in caplog.text
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200

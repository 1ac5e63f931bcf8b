"""/healthz tells the public "ok" or "fail" per check; why a check fails (host names, ports,
database roles) only to the clients that may read /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from channels_redis.core import RedisChannelLayer
from django.test import Client

pytestmark = pytest.mark.django_db

PUBLIC = "203.0.113.7"


@pytest.fixture
def unreachable_layer() -> Iterator[None]:
    """The channel layer pointed at a port where no Redis listens."""
    saved = channel_layers.backends.get(DEFAULT_CHANNEL_LAYER)
    channel_layers.backends[DEFAULT_CHANNEL_LAYER] = RedisChannelLayer(
        hosts=["redis://127.0.0.1:1/0"]
    )
    yield
    if saved is None:
        channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    else:
        channel_layers.backends[DEFAULT_CHANNEL_LAYER] = saved


def test_the_public_gets_ok_per_check(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    response = Client(REMOTE_ADDR=PUBLIC).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "channel_layer": "ok"}


def test_the_public_gets_fail_without_the_reason(settings: Any, unreachable_layer: None) -> None:
    settings.METRICS_TOKEN = ""
    response = Client(REMOTE_ADDR=PUBLIC).get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "channel_layer": "fail"}
    for detail in [b"127.0.0.1", b":1", b"Error", b"round trip"]:
        assert detail not in response.content


def test_the_reason_goes_where_metrics_are_allowed(settings: Any, unreachable_layer: None) -> None:
    settings.METRICS_TOKEN = "s3cret-token-for-prometheus"
    for client, headers in [
        (Client(REMOTE_ADDR="10.1.2.3"), {}),
        (
            Client(REMOTE_ADDR=PUBLIC),
            {"HTTP_AUTHORIZATION": "Bearer s3cret-token-for-prometheus", "secure": True},
        ),
    ]:
        response = client.get("/healthz", **headers)
        assert response.status_code == 503
        body = response.json()
        assert body["database"] == "ok"
        assert body["channel_layer"] not in {"ok", "fail"}
        assert "Error" in body["channel_layer"] or "no round trip" in body["channel_layer"]

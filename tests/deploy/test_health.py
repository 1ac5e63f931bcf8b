"""/healthz and /metrics in-process, on whichever database and channel layer this run uses."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.security.websocket import AllowedHostsOriginValidator
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from django.utils import timezone

from project.consumers import PingConsumer
from project.metrics import DURATION_BUCKETS, WebsocketMetricsMiddleware
from tests.clients import SAME_ORIGIN
from tests.deploy.prometheus import Metrics, parse
from workers.models import Job


def scrape(client: Client, **headers: Any) -> Metrics:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.content.decode())


def make_job(
    channel: str, status: str, *, ran: float | None = None, finished_ago: float = 60, **fields: Any
) -> Job:
    """A job row as the runtime leaves it; `ran` seconds between its start and its end."""
    now = timezone.now()
    job = Job(task_path="tests.tasks.trivial", channel=channel, status=status, time_limit=60)
    for name, value in fields.items():
        setattr(job, name, value)
    if ran is not None:
        job.finished_at = now - timedelta(seconds=finished_ago)
        job.started_at = job.finished_at - timedelta(seconds=ran)
    job.save()
    return job


@pytest.mark.django_db
def test_healthz_answers_200_when_the_database_and_the_layer_answer() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "channel_layer": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_has_no_trailing_slash_and_refuses_posts() -> None:
    assert Client().post("/healthz").status_code == 405
    assert Client().get("/healthz/").status_code == 404


@pytest.mark.django_db
def test_metrics_count_jobs_by_channel_and_status_and_the_oldest_wait() -> None:
    for _ in range(3):
        make_job("compute", "succeeded", ran=0.4)
    make_job("compute", "failed", ran=12)
    make_job("thumbnails", "running")
    make_job("thumbnails", "queued", run_after=timezone.now() - timedelta(seconds=90))
    make_job("thumbnails", "queued", run_after=timezone.now() - timedelta(seconds=5))
    # Not ready yet (a retry waiting for its backoff): not counted as waiting.
    make_job("compute", "queued", run_after=timezone.now() + timedelta(seconds=60))

    metrics = scrape(Client())

    assert metrics.types["pipeline_jobs"] == "gauge"
    assert metrics.get("pipeline_jobs", channel="compute", status="succeeded") == 3
    assert metrics.get("pipeline_jobs", channel="compute", status="failed") == 1
    assert metrics.get("pipeline_jobs", channel="compute", status="queued") == 1
    assert metrics.get("pipeline_jobs", channel="thumbnails", status="queued") == 2
    assert metrics.get("pipeline_jobs", channel="thumbnails", status="running") == 1
    # Every named channel and status is reported, so that dashboards see zeros.
    assert metrics.get("pipeline_jobs", channel="chat-messages", status="cancelled") == 0
    assert len(metrics.series("pipeline_jobs")) == 3 * len(Job.Status.values)

    age = metrics.get("pipeline_queue_oldest_ready_age_seconds", channel="thumbnails")
    assert age is not None
    assert 90 <= age < 120
    assert metrics.get("pipeline_queue_oldest_ready_age_seconds", channel="compute") == 0


@pytest.mark.django_db
def test_metrics_job_duration_histogram_covers_the_last_hour() -> None:
    durations = [0.05, 0.3, 0.3, 4, 45]
    for ran in durations:
        make_job("thumbnails", "succeeded", ran=ran)
    make_job("thumbnails", "failed", ran=700)
    # Finished two hours ago: outside the window.
    make_job("thumbnails", "succeeded", ran=1, finished_ago=7200)
    # Cancelled before it ran: no duration.
    make_job("thumbnails", "cancelled", finished_at=timezone.now())

    metrics = scrape(Client())

    assert metrics.types["pipeline_job_duration_seconds"] == "histogram"
    ok = {"channel": "thumbnails", "status": "succeeded"}
    assert metrics.get("pipeline_job_duration_seconds_count", **ok) == len(durations)
    assert metrics.get("pipeline_job_duration_seconds_sum", **ok) == pytest.approx(sum(durations))
    buckets = {
        bound: metrics.get("pipeline_job_duration_seconds_bucket", **ok, le=repr(bound))
        for bound in DURATION_BUCKETS
    }
    for bound, count in buckets.items():
        assert count == sum(1 for ran in durations if ran <= bound), (bound, buckets)
    assert metrics.get("pipeline_job_duration_seconds_bucket", **ok, le="+Inf") == len(durations)
    failed = {"channel": "thumbnails", "status": "failed"}
    assert metrics.get("pipeline_job_duration_seconds_bucket", **failed, le="600.0") == 0
    assert metrics.get("pipeline_job_duration_seconds_bucket", **failed, le="+Inf") == 1
    assert metrics.get("pipeline_job_duration_seconds_sum", **failed) == pytest.approx(700)


@pytest.mark.django_db
def test_metrics_are_refused_to_public_addresses(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert Client(REMOTE_ADDR="203.0.113.7").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="2001:db8::1").get("/metrics").status_code == 403
    # Loopback and private networks (the default METRICS_ALLOWED_NETWORKS) may read them.
    for address in ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.9", "::ffff:172.16.0.4"]:
        assert Client(REMOTE_ADDR=address).get("/metrics").status_code == 200, address


@pytest.mark.django_db
def test_metrics_token_admits_any_address_and_nothing_else_does(settings: Any) -> None:
    settings.METRICS_TOKEN = "s3cret-token-for-prometheus"
    settings.METRICS_ALLOWED_NETWORKS = []
    public = Client(REMOTE_ADDR="203.0.113.7")
    assert public.get("/metrics").status_code == 403
    assert public.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert public.get("/metrics", HTTP_AUTHORIZATION="Bearer ünïcode").status_code == 403
    assert Client().get("/metrics").status_code == 403, "loopback is no longer enough"
    scrape(public, HTTP_AUTHORIZATION="Bearer s3cret-token-for-prometheus")


async def test_websocket_connections_are_counted_while_open(db: None) -> None:
    app = WebsocketMetricsMiddleware(
        AllowedHostsOriginValidator(PingConsumer.as_asgi())  # type: ignore[no-untyped-call]
    )

    def ping_series() -> tuple[float, float]:
        try:
            metrics = scrape(Client())
        finally:
            # A thread of its own: its connection would outlive the test database.
            connections.close_all()
        return (
            metrics.get("pipeline_websocket_connections", kind="ping") or 0,
            metrics.get("pipeline_websocket_connections_accepted_total", kind="ping") or 0,
        )

    open_before, total_before = await asyncio.to_thread(ping_series)
    origin = [*SAME_ORIGIN]
    first = WebsocketCommunicator(app, "/ws/ping/", headers=origin)
    second = WebsocketCommunicator(app, "/ws/ping/", headers=origin)
    assert (await first.connect())[0]
    assert (await second.connect())[0]
    assert await asyncio.to_thread(ping_series) == (open_before + 2, total_before + 2)

    await first.disconnect()
    assert await asyncio.to_thread(ping_series) == (open_before + 1, total_before + 2)

    # A socket refused before it was accepted (foreign origin) is never counted.
    foreign = WebsocketCommunicator(app, "/ws/ping/", headers=[(b"origin", b"http://evil.test")])
    assert not (await foreign.connect())[0]
    assert await asyncio.to_thread(ping_series) == (open_before + 1, total_before + 2)

    await second.disconnect()
    assert await asyncio.to_thread(ping_series) == (open_before, total_before + 2)

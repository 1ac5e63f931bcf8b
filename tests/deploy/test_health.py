"""/healthz and /metrics in-process, on whichever database and channel layer this run uses."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.security.websocket import AllowedHostsOriginValidator
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.tasks import TaskResult, default_task_backend
from django.tasks.signals import task_finished
from django.test import Client
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST

from project.consumers import PingConsumer
from project.metrics import DURATION_BUCKETS, WebsocketMetricsMiddleware
from tests import tasks
from tests.clients import SAME_ORIGIN
from tests.deploy.prometheus import Metrics, parse
from workers.models import Job


def scrape(client: Client, **headers: Any) -> Metrics:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    # prometheus-client's text format (0.0.4 until prometheus-client 0.23, 1.0.0 since; the
    # same lines for names Prometheus' classic rules allow, as every name here is).
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
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


def finished_job_result(status: str, *, ran: float | None) -> TaskResult[Any, Any]:
    """A job of tests.tasks.trivial (channel compute) enqueued through the Tasks API, its row
    then left as the runtime leaves a job that ran `ran` seconds (None: it never started), as
    the TaskResult the runtime sends."""
    result = tasks.trivial.enqueue()
    now = timezone.now()
    started = None if ran is None else now - timedelta(seconds=ran)
    Job.objects.filter(pk=result.id).update(
        status=status, finished_at=now, started_at=started, last_attempted_at=started
    )
    return default_task_backend.get_result(result.id)


def job_finished(result: TaskResult[Any, Any]) -> None:
    """What the job runtime sends where a job reaches its final state."""
    task_finished.send(type(default_task_backend), task_result=result)


@pytest.mark.django_db
def test_metrics_job_duration_histogram_counts_every_finished_job_cumulatively() -> None:
    ok = {"channel": "compute", "status": "succeeded"}
    failed = {"channel": "compute", "status": "failed"}

    def histogram(metrics: Metrics, labels: dict[str, str]) -> dict[str, float]:
        """Bucket counts by `le`, and the count and sum, of one series (0 where absent)."""
        values = {
            le: metrics.get("pipeline_job_duration_seconds_bucket", **labels, le=le) or 0
            for le in [*map(repr, DURATION_BUCKETS), "+Inf"]
        }
        values["count"] = metrics.get("pipeline_job_duration_seconds_count", **labels) or 0
        values["sum"] = metrics.get("pipeline_job_duration_seconds_sum", **labels) or 0
        return values

    # Counters of this process, which earlier tests may have moved: compare with now.
    before = scrape(Client())
    durations = [0.05, 0.3, 0.3, 4, 45]
    for ran in durations:
        job_finished(finished_job_result("succeeded", ran=ran))
    job_finished(finished_job_result("failed", ran=700))
    # Cancelled before it ran: no duration.
    job_finished(finished_job_result("cancelled", ran=None))
    # A row that reached its end without the runtime saying so is not a duration seen.
    make_job("compute", "succeeded", ran=1)

    metrics = scrape(Client())

    assert metrics.types["pipeline_job_duration_seconds"] == "histogram"
    grown = {
        labels["status"]: {
            key: value - histogram(before, labels)[key]
            for key, value in histogram(metrics, labels).items()
        }
        for labels in (ok, failed)
    }
    assert grown["succeeded"]["count"] == len(durations)
    assert grown["succeeded"]["sum"] == pytest.approx(sum(durations))
    for bound in DURATION_BUCKETS:
        assert grown["succeeded"][repr(bound)] == sum(1 for ran in durations if ran <= bound), (
            bound,
            grown,
        )
    assert grown["succeeded"]["+Inf"] == len(durations)
    assert grown["failed"]["600.0"] == 0
    assert grown["failed"]["+Inf"] == 1
    assert grown["failed"]["count"] == 1
    assert grown["failed"]["sum"] == pytest.approx(700)

    # Cumulative, not a window over the rows: what was counted stays counted, however long
    # ago it finished.
    Job.objects.update(finished_at=timezone.now() - timedelta(hours=2))
    assert histogram(scrape(Client()), ok) == histogram(metrics, ok)
    # Every channel's series is there from the start, at zero until its first job.
    idle = scrape(Client())
    for channel in ["thumbnails", "compute", "chat-messages"]:
        for status in ["succeeded", "failed"]:
            labels = {"channel": channel, "status": status}
            assert idle.get("pipeline_job_duration_seconds_count", **labels) is not None


@pytest.mark.django_db
def test_metrics_are_refused_to_public_addresses(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert Client(REMOTE_ADDR="203.0.113.7").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="2001:db8::1").get("/metrics").status_code == 403
    # Loopback and private networks (the default METRICS_ALLOWED_NETWORKS) may read them.
    for address in ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.9", "::ffff:172.16.0.4"]:
        assert Client(REMOTE_ADDR=address).get("/metrics").status_code == 200, address


@pytest.mark.django_db
def test_metrics_token_admits_any_address_over_https_and_nothing_else_does(
    settings: Any,
) -> None:
    settings.METRICS_TOKEN = "s3cret-token-for-prometheus"
    settings.METRICS_ALLOWED_NETWORKS = []
    public = Client(REMOTE_ADDR="203.0.113.7")
    assert public.get("/metrics", secure=True).status_code == 403
    assert public.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", secure=True).status_code == 403
    assert (
        public.get("/metrics", HTTP_AUTHORIZATION="Bearer ünïcode", secure=True).status_code == 403
    )
    assert Client().get("/metrics").status_code == 403, "loopback is no longer enough"
    scrape(public, HTTP_AUTHORIZATION="Bearer s3cret-token-for-prometheus", secure=True)


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

"""The units' own command lines, run as processes with deploy/env.example pointed at this
run's PostgreSQL and Redis: what `systemctl start` would run, minus systemd itself
(tests/deploy/deployment.py says how)."""

from __future__ import annotations

import asyncio
import importlib
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from django.urls import Resolver404, resolve
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST

from tests.deploy.deployment import (
    METRICS,
    WEB,
    WORKER,
    Deployment,
    assert_structured_logs,
    log_in,
    probe_client,
    site_client,
    site_websocket,
)
from tests.deploy.prometheus import parse
from tests.jobs import enqueue, job_when, start_redis
from tests.media_tasks import images
from tests.processes import free_port, wait_for
from workers.models import Job

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def worker_pid(job: Job) -> int:
    return int(job.worker_id.split(":")[1])


def test_web_and_two_workers_serve_and_a_stopped_worker_loses_nothing(
    deployment: Deployment, user: Any, password: str
) -> None:
    web = deployment.web()
    # pipeline-collectstatic.service collected the static files, with
    # ManifestStaticFilesStorage's manifest: nginx serves them from here.
    assert (deployment.state / "static" / "staticfiles.json").is_file()
    first = deployment.worker("compute_thumbnails-1")
    second = deployment.worker("compute_thumbnails-2")
    client = log_in(site_client(web), user.username, password)

    health = client.get("/healthz")
    assert health.status_code == 200, health.text
    assert health.json() == {"database": "ok", "channel_layer": "ok"}

    # A long job, then more behind it; the worker running the long one is told to stop.
    long_job = enqueue(client, "count_up", 12, 0.25)
    running = job_when(long_job, "running")
    stopping = first if worker_pid(running) == first.popen.pid else second
    staying = second if stopping is first else first
    queued = [enqueue(client, "trivial") for _ in range(6)]
    wait_for(lambda: Job.objects.get(pk=long_job).progress >= 20, 10, "the job to be under way")
    stopping.signal(signal.SIGTERM)
    stopped_when = timezone.now()
    queued += [enqueue(client, "trivial") for _ in range(3)]

    # It finishes the job it holds, takes no other, and exits 0 well within the unit's
    # stop timeout (after which systemd would SIGKILL it).
    timeout = float(WORKER.value("Service", "TimeoutStopSec"))
    assert stopping.popen.wait(timeout) == 0, stopping.output()
    done = Job.objects.get(pk=long_job)
    assert done.status == "succeeded"
    assert done.attempts == 1
    assert worker_pid(done) == stopping.popen.pid
    for pk in queued:
        job = job_when(pk, "succeeded")
        if job.started_at and job.started_at > stopped_when:
            assert worker_pid(job) == staying.popen.pid, "a stopping worker took a new job"
    assert not Job.objects.exclude(status="succeeded").exists()

    # /metrics from this host, as Prometheus would read it here (nginx's default server).
    response = probe_client(web).get("/metrics")
    assert response.status_code == 200, response.text
    metrics = parse(response.text)
    assert metrics.get("pipeline_jobs", channel="compute", status="succeeded") == 1 + len(queued)
    labels = {"channel": "compute", "status": "succeeded"}
    assert metrics.get("pipeline_job_duration_seconds_count", **labels) is not None
    # From a public address (what nginx puts in X-Forwarded-For for an outside client).
    assert probe_client(web, "203.0.113.50").get("/metrics").status_code == 403
    # Under the site's name (HTTPS), no address is enough, loopback's neither.
    assert client.get("/metrics").status_code == 403

    assert staying.alive()
    assert_structured_logs(web, first, second)

    # The web server stops on SIGTERM within its unit's stop timeout, closing websockets
    # (pages reconnect to another web process) and exiting cleanly.
    async def stop_with_an_open_socket() -> int | None:
        async with site_websocket(web, "/ws/ping/") as ws:
            await ws.send(json.dumps({"before": "stop"}))
            assert json.loads(await ws.recv())["type"] == "pong"
            web.signal(signal.SIGTERM)
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
        return await asyncio.to_thread(
            web.popen.wait, float(WEB.value("Service", "TimeoutStopSec"))
        )

    assert asyncio.run(stop_with_an_open_socket()) == 0, web.output()


def test_the_metrics_unit_serves_a_worker_host_under_the_access_rule(
    deployment: Deployment,
) -> None:
    token = "worker-host-metrics-token-0123456789"
    worker = deployment.worker("compute-1")
    # Prometheus reaches a worker host over plain HTTP from the monitoring network (loopback
    # here): by its address; a token over plain HTTP is refused.
    server = deployment.metrics_server(METRICS_ALLOWED_NETWORKS="10.0.0.0/8", METRICS_TOKEN=token)
    Job.objects.create(
        task_path="tests.tasks.trivial",
        channel="compute",
        status=Job.Status.SUCCEEDED,
        time_limit=60,
        finished_at=timezone.now(),
    )

    url = f"{server.url}/metrics"
    assert httpx.get(url, timeout=10).status_code == 403
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(url, headers=bearer, timeout=10).status_code == 403
    server.signal(signal.SIGTERM)
    assert server.popen.wait(float(METRICS.value("Service", "TimeoutStopSec"))) == 0
    server = deployment.metrics_server(METRICS_ALLOWED_NETWORKS="127.0.0.0/8")
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    metrics = parse(response.text)
    assert metrics.get("pipeline_jobs", channel="compute", status="succeeded") == 1
    assert metrics.types["pipeline_job_duration_seconds"] == "histogram"

    assert worker.alive()
    assert_structured_logs(server)
    server.signal(signal.SIGTERM)
    assert server.popen.wait(float(METRICS.value("Service", "TimeoutStopSec"))) == 0


def uploads_api_missing() -> str | None:
    """Why the uploads API (another issue's work) cannot be used yet, or None."""
    try:
        importlib.import_module("media_tasks.views")
    except ImportError:
        return "media_tasks.views does not exist yet (the uploads API is being built)"
    try:
        match = resolve("/api/uploads/")
    except Resolver404:
        return "POST /api/uploads/ is not routed yet (the uploads API is being built)"
    if not match.func.__module__.startswith("media_tasks.views"):
        return f"/api/uploads/ is served by {match.func.__module__}, not media_tasks.views"
    return None


def test_an_image_uploaded_through_the_units_is_done(
    deployment: Deployment, user: Any, password: str
) -> None:
    missing = uploads_api_missing()
    if missing:
        pytest.skip(missing)
    web = deployment.web()
    deployment.worker("thumbnails-1")
    deployment.worker("compute-1")
    client = log_in(site_client(web), user.username, password)

    response = client.post(
        "/api/uploads/",
        files={"image": ("holiday.jpg", images.photo_like(900, 600), "image/jpeg")},
    )
    assert response.status_code == 202, response.text
    (upload,) = response.json()["uploads"]
    assert upload["status"] in {"queued", "processing"}

    def done() -> dict[str, Any] | None:
        detail = client.get(f"/api/uploads/{upload['id']}/").json()
        assert detail["status"] != "failed", detail
        return detail if detail["status"] == "done" else None

    detail = wait_for(done, 60, "the upload to be done", interval=0.3)
    assert detail["renditions"]
    # The renditions are files in the state directory, where nginx serves /media/ from.
    media = deployment.state / "media"
    for rendition in detail["renditions"]:
        relative = rendition["url"].split("/media/", 1)[1]
        assert (media / relative).stat().st_size == rendition["bytes"]


def test_healthz_answers_503_while_redis_is_down_and_200_when_it_is_back(
    deployment: Deployment, tmp_path: Path
) -> None:
    redis, port = start_redis(tmp_path)
    try:
        web = deployment.web(REDIS_URL=f"redis://127.0.0.1:{port}/0")
        # As a probe inside the network sees it (the reasons, not just ok/fail).
        client = probe_client(web)

        def health(expected: int) -> dict[str, str] | None:
            # Never longer than a probe waits: each check gives up after 2 s.
            response = client.get("/healthz", timeout=4)
            return response.json() if response.status_code == expected else None

        assert wait_for(lambda: health(200), 10, "healthz 200")["channel_layer"] == "ok"

        # Hung: Redis accepts nothing but answers nothing either.
        redis.send_signal(signal.SIGSTOP)
        body = wait_for(lambda: health(503), 10, "healthz 503 with Redis hung")
        assert body["database"] == "ok"
        assert "no round trip" in body["channel_layer"]
        redis.send_signal(signal.SIGCONT)
        wait_for(lambda: health(200), 15, "healthz 200 with Redis answering again")

        # Gone.
        redis.terminate()
        redis.wait(10)
        body = wait_for(lambda: health(503), 10, "healthz 503 with Redis stopped")
        assert body["database"] == "ok"
        assert "ConnectionError" in body["channel_layer"]

        redis, _ = start_redis(tmp_path, port)
        wait_for(lambda: health(200), 15, "healthz 200 with Redis back")
    finally:
        redis.send_signal(signal.SIGCONT)
        redis.terminate()
        redis.wait(10)


def test_healthz_answers_503_naming_an_unreachable_database(deployment: Deployment) -> None:
    closed = free_port()
    web = deployment.web(DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed}/pipeline")
    response = probe_client(web).get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["channel_layer"] == "ok"
    assert body["database"].startswith("OperationalError")
    assert str(closed) in body["database"]
    # The web process goes on serving, and says what failed in its log.
    assert web.alive()
    assert "healthz failing" in web.output()


def test_open_websockets_show_in_the_metrics(deployment: Deployment) -> None:
    asgi = (Path(__file__).resolve().parents[2] / "project" / "asgi.py").read_text()
    if "WebsocketMetricsMiddleware" not in asgi:
        pytest.skip(
            "project/asgi.py does not wrap its application in WebsocketMetricsMiddleware yet"
        )
    web = deployment.web()

    def open_pings() -> float:
        metrics = parse(probe_client(web).get("/metrics").text)
        return metrics.get("pipeline_websocket_connections", kind="ping") or 0

    async def scenario() -> tuple[float, float]:
        async with site_websocket(web, "/ws/ping/") as ws:
            await ws.send("{}")
            await ws.recv()
            during = await asyncio.to_thread(open_pings)
        await asyncio.sleep(0.5)
        return during, await asyncio.to_thread(open_pings)

    assert asyncio.run(scenario()) == (1, 0)

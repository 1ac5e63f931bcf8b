"""Metrics across real processes sharing PROMETHEUS_MULTIPROC_DIR (prometheus-client's
multiprocess mode, as the systemd units run them): what one process observes, another's
/metrics reports, and a process that ends takes its open websockets along."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST

from tests.clients import connect_ws
from tests.deploy.prometheus import Metrics, parse
from tests.jobs import enqueue, job_when
from tests.processes import Process, Processes, free_port, login, wait_for
from workers.models import Job

pytestmark = pytest.mark.slow

COMPUTE_OK = {"channel": "compute", "status": "succeeded"}


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    """The directory a host's units share (systemd's RuntimeDirectory= makes it)."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    return directory


def start_metrics_server(
    processes: Processes, metrics_dir: Path, name: str = "metrics", **env: str
) -> Process:
    port = free_port()
    process = processes.start(
        name,
        [sys.executable, "manage.py", "metrics_server", "--bind", "127.0.0.1", "--port", str(port)],
        port=port,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        **env,
    )
    wait_for(
        lambda: "serving /metrics" in process.output() or not process.alive(),
        30,
        f"{name} to listen",
    )
    assert process.alive(), process.output()
    return process


def scrape(process: Process, **headers: str) -> Metrics:
    response = httpx.get(f"{process.url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    return parse(response.text)


def send_task_finished_from_another_process(
    processes: Processes, metrics_dir: Path, job_id: int
) -> None:
    """What a worker process does when a job finishes: Django's task_finished with the job's
    TaskResult, sent by a process of its own that then exits."""
    code = (
        "from django.tasks import default_task_backend as backend\n"
        "from django.tasks.signals import task_finished\n"
        f"task_finished.send(type(backend), task_result=backend.get_result('{job_id}'))\n"
    )
    process = processes.manage(
        "job-process", "shell", "-c", code, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    )
    assert process.popen.wait(60) == 0, process.output()


def test_a_job_observed_by_another_process_is_reported_by_metrics_server_and_the_web_server(
    processes: Processes, metrics_dir: Path
) -> None:
    finished = timezone.now()
    job = Job.objects.create(
        task_path="tests.tasks.trivial",
        channel="compute",
        status=Job.Status.SUCCEEDED,
        time_limit=60,
        started_at=finished - timedelta(seconds=0.3),
        last_attempted_at=finished - timedelta(seconds=0.3),
        finished_at=finished,
    )
    send_task_finished_from_another_process(processes, metrics_dir, job.pk)

    server = start_metrics_server(processes, metrics_dir)
    web = processes.daphne("web", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    for process in (server, web):
        metrics = scrape(process)
        assert metrics.types["pipeline_job_duration_seconds"] == "histogram"
        assert metrics.get("pipeline_job_duration_seconds_count", **COMPUTE_OK) == 1
        assert metrics.get("pipeline_job_duration_seconds_sum", **COMPUTE_OK) == pytest.approx(0.3)
        assert metrics.get("pipeline_job_duration_seconds_bucket", **COMPUTE_OK, le="0.25") == 0
        assert metrics.get("pipeline_job_duration_seconds_bucket", **COMPUTE_OK, le="0.5") == 1
        # The database's figures, the same from every process.
        assert metrics.get("pipeline_jobs", **COMPUTE_OK) == 1

    # The metrics server answers /metrics only, as the web server's view does.
    assert httpx.get(f"{server.url}/").status_code == 404
    assert httpx.post(f"{server.url}/metrics").status_code == 405


def test_metrics_server_keeps_the_access_rule_and_needs_the_directory(
    processes: Processes, metrics_dir: Path
) -> None:
    token = "metrics-server-token-for-prometheus"
    server = start_metrics_server(
        processes, metrics_dir, METRICS_ALLOWED_NETWORKS="10.0.0.0/8", METRICS_TOKEN=token
    )
    assert httpx.get(f"{server.url}/metrics").status_code == 403, "loopback is not allowed"
    # It speaks plain HTTP: a token, right or wrong, is refused there.
    for offered in ["wrong", token]:
        refused = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {offered}"})
        assert refused.status_code == 403
    server.stop()
    server = start_metrics_server(processes, metrics_dir, METRICS_ALLOWED_NETWORKS="127.0.0.0/8")
    assert "pipeline_jobs" in scrape(server).types

    # Without the directory it would serve its own, empty, metrics: it refuses to start.
    alone = processes.manage("metrics-alone", "metrics_server", "--port", str(free_port()))
    assert alone.popen.wait(60) != 0
    assert "PROMETHEUS_MULTIPROC_DIR is not set" in alone.output()


def test_a_web_process_that_ends_takes_its_websockets_off_the_gauge_not_the_counter(
    processes: Processes, metrics_dir: Path
) -> None:
    server = start_metrics_server(processes, metrics_dir)

    def pings() -> tuple[float, float]:
        metrics = scrape(server)
        return (
            metrics.get("pipeline_websocket_connections", kind="ping") or 0,
            metrics.get("pipeline_websocket_connections_accepted_total", kind="ping") or 0,
        )

    def live_gauges_of(web: Process) -> list[Path]:
        return list(metrics_dir.glob(f"gauge_live*_{web.popen.pid}.db"))

    async def open_ping(web: Process) -> Any:
        ws = await connect_ws(web.url, "/ws/ping/")
        await ws.send("{}")
        await ws.recv()
        return ws

    async def scenario() -> None:
        first = await asyncio.to_thread(
            processes.daphne, "web-1", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
        )
        held = await open_ping(first)
        closed = await open_ping(first)
        await closed.close()
        await asyncio.sleep(0.3)
        assert await asyncio.to_thread(pings) == (1, 2)

        # Stopped as systemd stops it, with a socket open: it exits, its gauge goes.
        first.signal(signal.SIGTERM)
        assert await asyncio.to_thread(first.popen.wait, 15) == 0, first.output()
        assert not live_gauges_of(first), "an exiting process drops its own live gauges"
        await held.close()
        assert await asyncio.to_thread(pings) == (0, 2)

        # Killed (SIGKILL, out of memory): it cannot say so; the next scrape notices.
        second = await asyncio.to_thread(
            processes.daphne, "web-2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
        )
        held = await open_ping(second)
        assert await asyncio.to_thread(pings) == (1, 3)
        second.kill()
        assert live_gauges_of(second)
        assert await asyncio.to_thread(pings) == (0, 3)
        assert not live_gauges_of(second)
        await held.close()

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_job_run_by_a_separate_runworker_shows_in_the_web_servers_histogram(
    processes: Processes, metrics_dir: Path, user: Any, password: str
) -> None:
    web = processes.daphne("web", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    worker = processes.runworker("worker", "compute", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    # A host with workers only reports them through the metrics server.
    server = start_metrics_server(processes, metrics_dir)
    client = login(web.url, user.username, password)

    job = job_when(enqueue(client, "count_up", 3, 0.1), "succeeded")
    assert job.result["pid"] == worker.popen.pid
    ran = (job.finished_at - job.started_at).total_seconds()

    for process in (web, server):
        metrics = scrape(process)
        assert metrics.get("pipeline_job_duration_seconds_count", **COMPUTE_OK) == 1
        assert metrics.get("pipeline_job_duration_seconds_sum", **COMPUTE_OK) == pytest.approx(
            ran, abs=0.01
        )
        assert metrics.get("pipeline_job_duration_seconds_bucket", **COMPUTE_OK, le="0.25") == 0
        assert metrics.get("pipeline_job_duration_seconds_bucket", **COMPUTE_OK, le="+Inf") == 1

"""The site's Prometheus metrics, on prometheus-client, and who may read them.

Job figures that are database state are read from the database at each scrape, so every host
reports the same numbers. Job durations are a cumulative histogram, observed by the process
that ran the job when Django's `task_finished` signal says it finished. Websockets are
counted by the web process that holds them.

With PROMETHEUS_MULTIPROC_DIR set (the systemd units set it to a directory each host's units
share), every process writes its histogram, counters and gauges there, prometheus-client's
multiprocess mode, and a scrape reports the whole host: the web server's /metrics, or
`manage.py metrics_server` on a host that runs only workers. Unset (the embedded default,
tests), a process reports its own.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.tasks import TaskResult, TaskResultStatus
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from workers.selectors import jobs_operations

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Upper bounds, in seconds, of the job duration histogram's buckets: from a chat fan-out's few
# milliseconds to the default time limit (300 s) and beyond.
DURATION_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
# A job's final Tasks status, as the label `pipeline_jobs` uses for it.
FINAL_STATUSES = {TaskResultStatus.SUCCESSFUL: "succeeded", TaskResultStatus.FAILED: "failed"}

# Multiprocess mode has no `_created` series; without them in-process too, /metrics has one
# shape whichever mode serves it.
disable_created_metrics()  # type: ignore[no-untyped-call]

# This process's own metrics. In multiprocess mode their values live in the shared directory,
# and a scrape reads them from there instead.
PROCESS_REGISTRY = CollectorRegistry()

JOB_DURATION = Histogram(
    "pipeline_job_duration_seconds",
    "Run time of finished jobs (their last attempt), by named channel and final status.",
    ["channel", "status"],
    buckets=DURATION_BUCKETS,
    registry=PROCESS_REGISTRY,
)
WEBSOCKETS = Gauge(
    "pipeline_websocket_connections",
    "Websocket connections open in this host's web processes, by kind (jobs, chat, ...).",
    ["kind"],
    # Summed over the processes that run: a process's connections end with it.
    multiprocess_mode="livesum",
    registry=PROCESS_REGISTRY,
)
WEBSOCKETS_ACCEPTED = Counter(
    "pipeline_websocket_connections_accepted_total",
    "Websocket connections this host's web processes have accepted, by kind.",
    ["kind"],
    registry=PROCESS_REGISTRY,
)


# Jobs.


def job_finished(sender: Any, *, task_result: TaskResult[Any, Any], **kwargs: Any) -> None:
    """Receiver of django.tasks' `task_finished`: observe the run time of the job's last
    attempt (last_attempted_at to finished_at), labelled by its queue (named channel)."""
    status = FINAL_STATUSES.get(task_result.status)
    started, finished = task_result.last_attempted_at, task_result.finished_at
    if status is None or started is None or finished is None:
        return  # not final, or never ran (cancelled while queued): no run time to observe
    try:
        JOB_DURATION.labels(channel=task_result.task.queue_name, status=status).observe(
            max(0.0, (finished - started).total_seconds())
        )
    except Exception:
        # A signal's send() raises what a receiver raises: a metric must not fail the job.
        logger.exception("job=%s duration not recorded", task_result.id)


class JobsCollector:
    """The figures of the operators' page (workers.selectors.jobs_operations), read from the
    database at each scrape, so that every host reports the same: jobs by channel and
    status, each channel's oldest ready wait, its finished jobs, throughput and failure rate
    over the last minutes, whether it is paused, and the workers alive."""

    def collect(self) -> Iterator[Metric]:
        operations = jobs_operations()
        window = operations["window"]
        jobs = GaugeMetricFamily(
            "pipeline_jobs",
            "Jobs in the database, by named channel and status.",
            labels=["channel", "status"],
        )
        oldest = GaugeMetricFamily(
            "pipeline_queue_oldest_ready_age_seconds",
            "How long the oldest ready job of each channel has waited for a worker (0 if none).",
            labels=["channel"],
        )
        recent = GaugeMetricFamily(
            "pipeline_jobs_finished_recent",
            f"Jobs finished in the last {window} s, by named channel and status.",
            labels=["channel", "status"],
        )
        throughput = GaugeMetricFamily(
            "pipeline_jobs_throughput",
            f"Jobs finished per second (succeeded or failed) over the last {window} s.",
            labels=["channel"],
        )
        failure_rate = GaugeMetricFamily(
            "pipeline_jobs_failure_rate",
            f"Failed share of the jobs finished over the last {window} s (0 to 1).",
            labels=["channel"],
        )
        paused = GaugeMetricFamily(
            "pipeline_channel_paused", "1 while operators paused the channel.", labels=["channel"]
        )
        for channel, row in operations["channels"].items():
            for status, count in row["counts"].items():
                jobs.add_metric([channel, status], count)
            oldest.add_metric([channel], max(0.0, row["oldest_ready_age"] or 0.0))
            for status, count in row["recent"].items():
                recent.add_metric([channel, status], count)
            throughput.add_metric([channel], row["throughput"])
            failure_rate.add_metric([channel], row["failure_rate"])
            paused.add_metric([channel], 1 if row["paused"] else 0)
        workers = GaugeMetricFamily(
            "pipeline_workers_alive",
            "Workers whose heartbeat is recent, by named channel.",
            labels=["channel"],
        )
        alive: dict[str, int] = dict.fromkeys(operations["channels"], 0)
        for worker in operations["workers"]:
            for channel in worker["channels"]:
                alive[channel] = alive.get(channel, 0) + 1
        for channel, count in alive.items():
            workers.add_metric([channel], count)
        yield from (jobs, oldest, recent, throughput, failure_rate, paused, workers)


# Websocket connections, counted where the server accepts and ends them.


def websocket_connected(kind: str) -> None:
    """Count one accepted websocket of `kind` (e.g. "jobs", "chat") in this process."""
    WEBSOCKETS.labels(kind=kind).inc()
    WEBSOCKETS_ACCEPTED.labels(kind=kind).inc()


def websocket_disconnected(kind: str) -> None:
    """Count the end of a websocket that websocket_connected() counted."""
    WEBSOCKETS.labels(kind=kind).dec()


def websocket_kind(path: str) -> str:
    """The kind of a websocket from its path: /ws/chat/lobby/ is "chat"."""
    parts = [part for part in path.split("/") if part]
    return parts[1] if len(parts) > 1 and parts[0] == "ws" else "other"


Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class WebsocketMetricsMiddleware:
    """Counts websockets from the accept until the application instance ends, whatever
    ends it (the client, the consumer's close, or the server's shutdown)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        kind = websocket_kind(scope.get("path", ""))
        accepted = False

        async def counting_send(message: Message) -> None:
            nonlocal accepted
            await send(message)
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                websocket_connected(kind)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if accepted:
                websocket_disconnected(kind)


# Processes sharing PROMETHEUS_MULTIPROC_DIR.


def process_exited(pid: int | None = None) -> None:
    """Drop a process's live gauges (its open websockets) from the shared directory; its
    counters and histograms stay, so that the host's totals never go down."""
    mark_process_dead(pid or os.getpid(), settings.PROMETHEUS_MULTIPROC_DIR)  # type: ignore[no-untyped-call]


def process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, as another user
    return True


def forget_killed_processes() -> None:
    """process_exited() for the processes that ended without running it (SIGKILL, OOM).
    The host's units share one PID namespace, so a pid that is not found has ended."""
    for path in Path(settings.PROMETHEUS_MULTIPROC_DIR).glob("gauge_live*_*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not process_running(int(pid)):
            process_exited(int(pid))


# The exposition.


def scrape_registry() -> CollectorRegistry:
    """What a scrape reports: this host's processes (multiprocess mode) or this process, and
    the job figures from the database. Made anew for each scrape, as multiprocess mode asks."""
    registry = CollectorRegistry()
    if settings.PROMETHEUS_MULTIPROC_DIR:
        forget_killed_processes()
        MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)  # type: ignore[no-untyped-call]
    else:
        registry.register(PROCESS_REGISTRY)
    registry.register(JobsCollector())
    return registry


def metrics_text() -> bytes:
    """Every metric of this host (or process), read now, in Prometheus' text format."""
    # Every channel's series exist from the start, at zero: rate() then counts the first
    # jobs too, which it cannot for a series that appears with them.
    for channel in settings.WORKER_CHANNELS:
        for status in FINAL_STATUSES.values():
            JOB_DURATION.labels(channel=channel, status=status)
    return generate_latest(scrape_registry())


# Who may read /metrics.


def allowed_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(
            ipaddress.ip_network(network, strict=False)
            for network in settings.METRICS_ALLOWED_NETWORKS
        )
    except ValueError as error:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {error}") from None


def metrics_allowed(request: HttpRequest) -> bool:
    """Over HTTPS (the site's public name, perhaps through a load balancer): the bearer of
    METRICS_TOKEN only; a client address there may have been forwarded, and is not trusted.
    Over plain HTTP (nginx's default server, by IP, inside the network; `manage.py
    metrics_server`): a client address in METRICS_ALLOWED_NETWORKS only; a token sent over
    plain HTTP is refused, since anyone on the way could read it.

    REMOTE_ADDR is the address nginx saw (daphne --proxy-headers reads the X-Forwarded-For
    that nginx overwrites), or under `manage.py metrics_server` the scraper's own; a
    client's own X-Forwarded-For never reaches this check.
    """
    token: str = settings.METRICS_TOKEN
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if request.is_secure():
        return bool(
            token
            and scheme.lower() == "bearer"
            and hmac.compare_digest(offered.encode(), token.encode())
        )
    if offered:
        logger.warning("/metrics refused a token sent over plain HTTP: change METRICS_TOKEN")
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in allowed_networks())

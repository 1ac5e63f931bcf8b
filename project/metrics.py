"""Prometheus metrics in the text exposition format, and the websocket connection gauge.

A handful of gauges and one histogram do not need a client library: the text format is
written here by hand. Job figures come from the database, so every web process reports the
same numbers; websocket connections are counted per process, so Prometheus scrapes every web
host and sums them.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest
from django.utils import timezone

from workers.models import Job
from workers.selectors import jobs_overview

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Upper bounds, in seconds, of the job duration histogram's buckets.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# The histogram covers jobs that finished this recently: a sliding window, not a counter.
DURATION_WINDOW = timedelta(hours=1)

Labels = dict[str, str]


@dataclass
class MetricFamily:
    name: str
    type: str
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        self.samples.append((suffix, labels, value))


def render(families: Iterable[MetricFamily]) -> str:
    """The families in Prometheus' text format (version 0.0.4)."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for suffix, labels, value in family.samples:
            lines.append(f"{family.name}{suffix}{format_labels(labels)} {format_value(value)}")
    return "\n".join(lines) + "\n"


def format_labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{escape(value)}"' for key, value in labels.items()) + "}"


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def format_bound(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


# Websocket connections, counted where the server accepts and ends them.

_websockets: Counter[str] = Counter()
_websockets_total: Counter[str] = Counter()
_websockets_lock = threading.Lock()


def websocket_connected(kind: str) -> None:
    """Count one accepted websocket of `kind` (e.g. "jobs", "chat") in this process."""
    with _websockets_lock:
        _websockets[kind] += 1
        _websockets_total[kind] += 1


def websocket_disconnected(kind: str) -> None:
    """Count the end of a websocket that websocket_connected() counted."""
    with _websockets_lock:
        _websockets[kind] = max(0, _websockets[kind] - 1)


def websocket_counts() -> tuple[dict[str, int], dict[str, int]]:
    """(open now, accepted since the process started), by kind."""
    with _websockets_lock:
        return dict(_websockets), dict(_websockets_total)


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


# Jobs, from the database.


def job_durations(*, window: timedelta) -> list[dict[str, Any]]:
    """Per channel and final status, the run time of jobs finished within `window`: count,
    sum and cumulative bucket counts (the last attempt's started_at to finished_at)."""
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le_{n}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
        for n, bound in enumerate(DURATION_BUCKETS)
    }
    rows = (
        Job.objects.filter(
            status__in=[Job.Status.SUCCEEDED, Job.Status.FAILED],
            finished_at__gte=timezone.now() - window,
            started_at__isnull=False,
        )
        .annotate(duration=duration)
        .values("channel", "status")
        .annotate(count=Count("id"), total=Sum("duration"), **buckets)
        .order_by("channel", "status")
    )
    return [dict(row) for row in rows]


def metrics_families() -> list[MetricFamily]:
    """Every metric this process reports, read now."""
    jobs = MetricFamily(
        "pipeline_jobs",
        "gauge",
        "Jobs in the database, by named channel and status.",
    )
    oldest = MetricFamily(
        "pipeline_queue_oldest_ready_age_seconds",
        "gauge",
        "How long the oldest ready job of each channel has waited for a worker (0 if none).",
    )
    for channel, row in jobs_overview().items():
        for status, count in row["counts"].items():
            jobs.add(count, channel=channel, status=status)
        oldest.add(max(0.0, row["oldest_ready_age"] or 0.0), channel=channel)

    window = int(DURATION_WINDOW.total_seconds())
    durations = MetricFamily(
        "pipeline_job_duration_seconds",
        "histogram",
        f"Run time of the jobs that finished in the last {window} s, by channel and status "
        "(a sliding window: use histogram_quantile() on it directly, not rate()).",
    )
    for row in job_durations(window=DURATION_WINDOW):
        labels = {"channel": row["channel"], "status": row["status"]}
        for n, bound in enumerate(DURATION_BUCKETS):
            durations.add(row[f"le_{n}"], "_bucket", **labels, le=format_bound(bound))
        durations.add(row["count"], "_bucket", **labels, le="+Inf")
        total: timedelta | None = row["total"]
        durations.add(total.total_seconds() if total else 0.0, "_sum", **labels)
        durations.add(row["count"], "_count", **labels)

    open_now, accepted = websocket_counts()
    websockets = MetricFamily(
        "pipeline_websocket_connections",
        "gauge",
        "Websocket connections open in this web process, by kind (jobs, chat, ...).",
    )
    websockets_total = MetricFamily(
        "pipeline_websocket_connections_accepted_total",
        "counter",
        "Websocket connections this web process has accepted since it started, by kind.",
    )
    for kind in sorted(accepted):
        websockets.add(open_now.get(kind, 0), kind=kind)
        websockets_total.add(accepted[kind], kind=kind)
    return [jobs, oldest, durations, websockets, websockets_total]


def metrics_text() -> str:
    return render(metrics_families())


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
    """True for the bearer of METRICS_TOKEN, or a client address in METRICS_ALLOWED_NETWORKS.

    REMOTE_ADDR is the address nginx saw (daphne --proxy-headers reads the X-Forwarded-For
    that nginx overwrites); a client's own X-Forwarded-For never reaches this check.
    """
    token: str = settings.METRICS_TOKEN
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if (
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(offered.encode(), token.encode())
    ):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in allowed_networks())

"""`/healthz` for load balancers and systemd watchers, `/metrics` for Prometheus."""

from __future__ import annotations

import asyncio
import logging
import secrets

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from project.metrics import CONTENT_TYPE, metrics_allowed, metrics_text
from wire.outage import Outage

logger = logging.getLogger(__name__)

# Each check gives up after this long: a probe must answer even when a service hangs.
CHECK_TIMEOUT = 2.0
OK = "ok"
# What the public reads in place of a failing check's reason: reasons name hosts, ports,
# database roles and versions, and are for those allowed to read /metrics.
FAIL = "fail"
# Probes ask every second or two: a failing check is logged when it starts and when it ends.
_health = Outage("healthz", logger)


def database_select_one() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # This runs on a thread of its own (see health_database): leave no connection behind.
        connection.close()


async def health_database() -> str:
    """ "ok", or why the database did not answer `SELECT 1` in time."""
    try:
        # Not thread-sensitive: a hung database must not block the views that share the
        # main sync thread; the timeout stops the wait, not the thread.
        await asyncio.wait_for(
            sync_to_async(database_select_one, thread_sensitive=False)(), CHECK_TIMEOUT
        )
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT:g} s"
    except Exception as error:
        return f"{type(error).__name__}: {error}".strip()
    return OK


async def channel_layer_round_trip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel("healthz.")
    token = secrets.token_hex(8)
    await layer.send(channel, {"type": "healthz.ping", "token": token})
    message = await layer.receive(channel)
    if message.get("token") != token:
        raise ValueError(f"received {message!r} instead of the token sent")


async def health_channel_layer() -> str:
    """ "ok", or why a message sent to a new channel did not come back in time."""
    try:
        await asyncio.wait_for(channel_layer_round_trip(), CHECK_TIMEOUT)
    except TimeoutError:
        return f"no round trip within {CHECK_TIMEOUT:g} s"
    except Exception as error:
        return f"{type(error).__name__}: {error}".strip()
    return OK


@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the channel layer answer, else 503. Each check says "ok" or
    "fail"; why it failed only to clients that may read /metrics (and always in the log)."""
    database, channel_layer = await asyncio.gather(health_database(), health_channel_layer())
    checks = {"database": database, "channel_layer": channel_layer}
    healthy = all(result == OK for result in checks.values())
    if healthy:
        _health.answered()
    else:
        _health.failed(f"database={database!r} channel_layer={channel_layer!r}")
    if not metrics_allowed(request):
        checks = {name: OK if result == OK else FAIL for name, result in checks.items()}
    return JsonResponse(checks, status=200 if healthy else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for private networks or the bearer of METRICS_TOKEN only."""
    if not metrics_allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE)

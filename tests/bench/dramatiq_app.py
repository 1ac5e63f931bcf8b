"""The Dramatiq baseline for bench_jobs: Dramatiq 2's defaults, its Redis broker.

Started by the benchmark as `dramatiq tests.bench.dramatiq_app --processes 1 --threads 8`; it
reads its broker URL from the environment the benchmark gives it. Dramatiq stores no results
by default: the actor pushes how long its message took from its send to its end onto a list
(one Redis command, as Celery's result is one), which the benchmark counts.
"""

import os
import time

import dramatiq  # type: ignore[import-not-found]
from dramatiq.brokers.redis import RedisBroker  # type: ignore[import-not-found]

from tests.bench import redis_url

BROKER_URL = os.environ.get("BENCH_DRAMATIQ_BROKER_URL") or redis_url(3)
DONE_KEY = "bench-dramatiq-done"

broker = RedisBroker(url=BROKER_URL)
dramatiq.set_broker(broker)


@dramatiq.actor
def trivial(sent_at: float) -> None:
    """What tests.tasks.trivial does, and the time from its send to its end, recorded."""
    broker.client.rpush(DONE_KEY, time.time() - sent_at)

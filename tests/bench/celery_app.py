"""The Celery baseline for bench_jobs: Celery's default setup, Redis as broker and results.

Started by the benchmark as `celery -A tests.bench.celery_app worker --pool=solo`; it reads
its broker and result URLs from the environment the benchmark gives it.
"""

import os

# Celery is only in requirements/bench.txt, so `make typecheck` may run without it.
from celery import Celery  # type: ignore[import-not-found]

from tests.bench import redis_url

# Database indexes of the benchmark's own, apart from the channel layer's (see bench_jobs).
BROKER_URL = os.environ.get("BENCH_CELERY_BROKER_URL") or redis_url(3)
RESULT_URL = os.environ.get("BENCH_CELERY_RESULT_URL") or redis_url(4)

app = Celery("bench", broker=BROKER_URL, backend=RESULT_URL)
app.conf.broker_connection_retry_on_startup = True


@app.task
def trivial() -> str:
    """What tests.tasks.trivial does when enqueued without arguments."""
    return "ok"

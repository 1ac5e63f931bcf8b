"""Trivial-job throughput of the job runtime, of Celery 5 and of Dramatiq 2, side by side, 1
and 2 workers.

Ours: `manage.py runworker compute` processes on PostgreSQL + Redis; a job is done when its
row says `succeeded`. Celery: `celery worker --pool=solo` processes with Redis as broker and
result backend, its default setup otherwise; a task is done when its result is stored.
Dramatiq: `dramatiq` processes (one process of 8 threads each, its default thread count) with
its Redis broker and its default middleware; a message is done when its actor recorded it.

Two figures per runtime and worker count:
- stream: this process enqueues BENCH_JOBS jobs one after another while the workers run; the
  wall time from the first enqueue until the last job is done, each enqueue call's latency,
  and each job's latency from its enqueue to its being done.
- backlog: BENCH_JOBS jobs wait before the workers start; the rate from the first job done to
  the last, i.e. what the workers sustain when the producer is not the limit, and the workers'
  own CPU time per job meanwhile (the database and Redis servers' CPU is not counted).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.bench import (
    PRODUCTION_ENV,
    BenchProcess,
    bench_database,
    flush_redis,
    out,
    percentile,
    redis_url,
    setup_django,
)

JOBS = int(os.environ.get("BENCH_JOBS", "2000"))
# Dramatiq's worker: one process with its default of 8 threads.
DRAMATIQ_THREADS = 8
WARMUP = 50
WORKER_COUNTS = (1, 2)
# Whatever happens, one measured phase gives up after this long.
RUN_TIMEOUT = float(os.environ.get("BENCH_RUN_TIMEOUT", "90"))
START_TIMEOUT = 30.0
POLL_INTERVAL = 0.02
# Redis database indexes of this benchmark's own (BENCH_REDIS_DBS: the channel layer, Celery's
# broker and Celery's results; one index for all three is fine, the runs take turns and each
# starts from an empty database) and its PostgreSQL database, so that two benchmarks of two
# checkouts on one machine do not share them.
LAYER_DB, CELERY_BROKER_DB, CELERY_RESULT_DB = (
    int(index) for index in os.environ.get("BENCH_REDIS_DBS", "2,3,4").split(",")
)
DATABASE = os.environ.get("BENCH_DATABASE", "pipeline_bench_jobs")
# A finished Celery task leaves one key, its result.
CELERY_RESULT_KEYS = "celery-task-meta-*"
# Both runtimes log at INFO: Celery two lines per task (received, succeeded); ours three per
# quick job (django.tasks' started and finished, and its own succeeded), four for a job
# running longer than a watchdog tick.
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "INFO")

Enqueue = Callable[[], Any]
Counter = Callable[[], int]
# From what each enqueue returned and the time.time() it was called at: each job's latency
# from its enqueue to its being done, in seconds.
JobLatencies = Callable[[list[tuple[Any, float]]], list[float]]


@dataclass
class Run:
    runtime: str
    workers: int
    stream_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    job_latencies: list[float] = field(default_factory=list)
    backlog_seconds: float = 0.0
    backlog_cpu_seconds: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.runtime} {self.workers}w"

    @property
    def stream_rate(self) -> float:
        return JOBS / self.stream_seconds

    @property
    def backlog_rate(self) -> float:
        # From the first job done to the last: JOBS - 1 intervals.
        return (JOBS - 1) / self.backlog_seconds

    @property
    def cpu_ms_per_job(self) -> float:
        return self.backlog_cpu_seconds * 1000 / (JOBS - 1)

    def latency_ms(self, fraction: float) -> float:
        return percentile(self.latencies, fraction) * 1000

    def job_latency_ms(self, fraction: float) -> float:
        return percentile(self.job_latencies, fraction) * 1000

    def summary(self) -> str:
        return (
            f"{self.label}: stream {self.stream_rate:.0f} jobs/s, "
            f"backlog {self.backlog_rate:.0f} jobs/s"
        )


@dataclass
class Workers:
    """A runtime's worker command, started `count` times, each in its own process group."""

    name: str
    command: list[str]
    env: dict[str, str]
    ready: str
    logs: Path
    processes: list[BenchProcess] = field(default_factory=list)

    def start(self, count: int) -> None:
        for n in range(count):
            self.processes.append(
                BenchProcess(
                    f"{self.name}-{n}",
                    [part.replace("{n}", str(n)) for part in self.command],
                    self.env,
                    self.logs / f"{self.name}-{count}w-{n}.log",
                )
            )
        for process in self.processes:
            process.wait_for_output(self.ready, START_TIMEOUT)

    def cpu_seconds(self) -> float:
        return sum(process.cpu_seconds() for process in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()
        self.processes.clear()


def timed_calls(call: Enqueue, count: int) -> tuple[list[float], list[tuple[Any, float]]]:
    """Each call's latency, and what it returned with the time.time() it was called at."""
    latencies, returned = [], []
    for _ in range(count):
        called_at = time.time()
        before = time.perf_counter()
        handle = call()
        latencies.append(time.perf_counter() - before)
        returned.append((handle, called_at))
    return latencies, returned


def wait_until(done: Counter, target: int, what: str, timeout: float) -> float:
    """Poll `done()` until it reaches `target`; the perf_counter time when it was seen."""
    deadline = time.perf_counter() + timeout
    while True:
        now = time.perf_counter()
        count = done()
        if count >= target:
            return now
        if now > deadline:
            raise TimeoutError(f"{what}: {count} of {target} done after {timeout:g} s")
        time.sleep(POLL_INTERVAL)


def measure_backlog(run: Run, done: Counter, workers: Workers) -> None:
    """With JOBS jobs already waiting, start the workers and time first-done to last-done."""
    workers.start(run.workers)
    first = wait_until(done, 1, f"{run.label} backlog, first job", START_TIMEOUT)
    cpu_first = workers.cpu_seconds()
    last = wait_until(done, JOBS, f"{run.label} backlog", RUN_TIMEOUT)
    run.backlog_cpu_seconds = workers.cpu_seconds() - cpu_first
    run.backlog_seconds = last - first


def measure_stream(run: Run, enqueue: Enqueue, done: Counter, job_latencies: JobLatencies) -> None:
    """Warm the producer up, then time JOBS enqueues and wait for all of them to finish."""
    already = done()
    timed_calls(enqueue, WARMUP)
    wait_until(done, already + WARMUP, f"{run.label} warm-up", START_TIMEOUT)
    started = time.perf_counter()
    run.latencies, enqueued = timed_calls(enqueue, JOBS)
    finished = wait_until(done, already + WARMUP + JOBS, f"{run.label} stream", RUN_TIMEOUT)
    run.stream_seconds = finished - started
    run.job_latencies = job_latencies(enqueued)


def empty_job_table() -> None:
    """Delete every job and vacuum the table, as autovacuum would between runs (it may be off
    on the machine running the benchmark): one run's dead rows must not slow the next."""
    from django.db import connection

    from workers.models import Job

    Job.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(Job._meta.db_table)}")


def run_ours(count: int, *, database: str, layer: str, logs: Path) -> Run:
    from django.db import close_old_connections
    from django.utils import timezone

    from tests.tasks import trivial
    from workers.models import Job
    from workers.wakeups import wake

    run = Run("ours", count)
    empty_job_table()
    flush_redis(layer)
    workers = Workers(
        "ours",
        [sys.executable, "manage.py", "runworker", "compute"],
        {
            **os.environ,
            **PRODUCTION_ENV,
            "DATABASE_URL": database,
            "REDIS_URL": layer,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DJANGO_LOG_LEVEL": LOG_LEVEL,
        },
        ready="listening on channels",
        logs=logs,
    )

    def succeeded() -> int:
        return Job.objects.filter(status=Job.Status.SUCCEEDED).count()

    def job_latencies(enqueued: list[tuple[Any, float]]) -> list[float]:
        # Both times are written by the processes concerned (the producer, the worker).
        rows = Job.objects.filter(pk__in=[int(result.id) for result, _ in enqueued])
        return [
            (finished - queued).total_seconds()
            for queued, finished in rows.values_list("enqueued_at", "finished_at")
        ]

    # The backlog as `enqueue()` leaves it, written in one go (one by one, the writing would
    # take longer than the draining): rows already woken, a wake-up per worker waiting.
    now = timezone.now()
    Job.objects.bulk_create(
        Job(
            task_path=trivial.module_path,
            channel="compute",
            time_limit=300,
            run_after=now,
            enqueued_at=now,
            woken_at=now,
        )
        for _ in range(JOBS)
    )
    for job in Job.objects.order_by("id")[:count]:
        wake(job)
    try:
        measure_backlog(run, succeeded, workers)
        empty_job_table()
        measure_stream(run, trivial.enqueue, succeeded, job_latencies)
        unfinished = Job.objects.exclude(status=Job.Status.SUCCEEDED).count()
        if unfinished:
            raise RuntimeError(f"{run.label}: {unfinished} jobs did not succeed")
        return run
    finally:
        workers.stop()
        close_old_connections()


def run_celery(count: int, *, broker: str, results: str, logs: Path) -> Run:
    import redis

    # celery_app reads these at import, here as in the workers.
    os.environ["BENCH_CELERY_BROKER_URL"], os.environ["BENCH_CELERY_RESULT_URL"] = broker, results
    from tests.bench.celery_app import trivial

    run = Run("celery", count)
    flush_redis(broker, results)
    workers = Workers(
        "celery",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.bench.celery_app",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--hostname=bench{n}@%h",
            f"--loglevel={LOG_LEVEL}",
        ],
        dict(os.environ),
        ready=" ready.",
        logs=logs,
    )
    result_db = redis.Redis.from_url(results)

    count_results = result_db.register_script("return #redis.call('keys', ARGV[1])")

    def stored() -> int:
        # Each finished task leaves one key, its result.
        return int(count_results(args=[CELERY_RESULT_KEYS]))

    def job_latencies(enqueued: list[tuple[Any, float]]) -> list[float]:
        # A result's date_done is written by the worker when the task is done.
        metas = result_db.mget([f"celery-task-meta-{result.id}" for result, _ in enqueued])
        return [
            datetime.fromisoformat(json.loads(meta)["date_done"]).timestamp() - called_at
            for meta, (_, called_at) in zip(metas, enqueued, strict=True)
        ]

    for _ in range(JOBS):
        trivial.delay()
    try:
        measure_backlog(run, stored, workers)
        result_db.delete(*result_db.keys(CELERY_RESULT_KEYS))
        measure_stream(run, trivial.delay, stored, job_latencies)
        return run
    finally:
        workers.stop()
        result_db.close()


def run_dramatiq(count: int, *, broker: str, logs: Path) -> Run:
    import redis

    # dramatiq_app reads it at import, here as in the workers.
    os.environ["BENCH_DRAMATIQ_BROKER_URL"] = broker
    from tests.bench.dramatiq_app import DONE_KEY, trivial

    run = Run("dramatiq", count)
    flush_redis(broker)
    workers = Workers(
        "dramatiq",
        [
            sys.executable,
            "-m",
            "dramatiq",
            "tests.bench.dramatiq_app",
            "--processes",
            "1",
            "--threads",
            str(DRAMATIQ_THREADS),
        ],
        {**os.environ, "PYTHONUNBUFFERED": "1"},
        ready="ready for action",
        logs=logs,
    )
    done_db = redis.Redis.from_url(broker)

    def done() -> int:
        return int(done_db.llen(DONE_KEY))

    def job_latencies(enqueued: list[tuple[Any, float]]) -> list[float]:
        # Each message's time from its send to its end, pushed by the actor in the order
        # the messages ended; the stream's are the last ones.
        return [float(value) for value in done_db.lrange(DONE_KEY, -len(enqueued), -1)]

    def send() -> Any:
        return trivial.send(time.time())

    for _ in range(JOBS):
        send()
    try:
        measure_backlog(run, done, workers)
        done_db.delete(DONE_KEY)
        measure_stream(run, send, done, job_latencies)
        return run
    finally:
        workers.stop()
        done_db.close()


def view_like_latencies(layer: str) -> list[float]:
    """Enqueue latency as a sync view under daphne sees it: in a thread of a running loop."""
    from asgiref.sync import sync_to_async

    from tests.tasks import trivial

    flush_redis(layer)

    async def enqueue_all() -> list[float]:
        latencies = []
        # No worker runs: the channel keeps its one wake-up, later sends find it full.
        for _ in range(WARMUP + JOBS // 4):
            before = time.perf_counter()
            await sync_to_async(trivial.enqueue)()
            latencies.append(time.perf_counter() - before)
        return latencies[WARMUP:]

    return asyncio.run(enqueue_all())


def in_transaction_latencies() -> list[float]:
    """Enqueue latency inside the caller's transaction (a view's, a service's): the row's
    INSERT without its commit, which the caller's other writes share. Rolled back."""
    from django.db import transaction

    from tests.tasks import trivial

    latencies = []
    with transaction.atomic():
        for _ in range(WARMUP + JOBS // 4):
            before = time.perf_counter()
            trivial.enqueue()
            latencies.append(time.perf_counter() - before)
        transaction.set_rollback(True)
    return latencies[WARMUP:]


def commit_floor(database: str) -> list[float]:
    """What one durable commit costs on this PostgreSQL: a one-row INSERT into a one-column
    table in autocommit, the least a durably recorded enqueue can cost (the WAL flush)."""
    import psycopg

    latencies = []
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_commit_floor (id bigserial PRIMARY KEY)")
        try:
            for _ in range(WARMUP + JOBS // 4):
                before = time.perf_counter()
                conn.execute("INSERT INTO bench_commit_floor DEFAULT VALUES")
                latencies.append(time.perf_counter() - before)
        finally:
            conn.execute("DROP TABLE bench_commit_floor")
    return latencies[WARMUP:]


def redis_persistence(layer: str) -> str:
    import redis

    client = redis.Redis.from_url(layer)
    try:
        appendonly = client.config_get("appendonly").get("appendonly", "?")
        save = client.config_get("save").get("save", "?")
    finally:
        client.close()
    return f"appendonly {appendonly}, save {save or 'off'!r}"


@dataclass
class Floors:
    """The enqueue's own cost apart from its commit, and the commit's cost alone."""

    in_transaction: list[float]
    commit: list[float]
    redis: str


def report(runs: list[Run], view_like: list[float], floors: Floors | None = None) -> None:
    out(
        f"{JOBS} trivial jobs per run; loopback PostgreSQL and Redis; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    out()
    header = (
        f"{'runtime':<11}{'stream jobs/s':>14}{'enqueue p50 ms':>16}{'p99 ms':>8}"
        f"{'job p50 ms':>12}{'p99 ms':>8}{'backlog jobs/s':>16}{'worker CPU ms/job':>19}"
    )
    out(header)
    out("-" * len(header))
    for run in runs:
        out(
            f"{run.label:<11}{run.stream_rate:>14.0f}{run.latency_ms(0.5):>16.2f}"
            f"{run.latency_ms(0.99):>8.2f}{run.job_latency_ms(0.5):>12.1f}"
            f"{run.job_latency_ms(0.99):>8.1f}{run.backlog_rate:>16.0f}{run.cpu_ms_per_job:>19.2f}"
        )
    out()
    by_label = {run.label: run for run in runs}
    for workers in WORKER_COUNTS:
        ours = by_label.get(f"ours {workers}w")
        for peer in ("celery", "dramatiq"):
            other = by_label.get(f"{peer} {workers}w")
            if ours and other:
                out(
                    f"ours/{peer}, {workers} worker(s): "
                    f"stream x{ours.stream_rate / other.stream_rate:.2f}, "
                    f"backlog x{ours.backlog_rate / other.backlog_rate:.2f}, "
                    f"enqueue p50 x{ours.latency_ms(0.5) / other.latency_ms(0.5):.2f}, "
                    f"p99 x{ours.latency_ms(0.99) / other.latency_ms(0.99):.2f}"
                )
    ours = by_label.get("ours 1w")
    dramatiq = by_label.get("dramatiq 1w")
    if ours and dramatiq:
        out(
            "targets: end to end (stream, 1 worker) >= 1.5x Dramatiq: "
            f"x{ours.stream_rate / dramatiq.stream_rate:.2f}; "
            f"enqueue p50 <= 0.3 ms: {ours.latency_ms(0.5):.2f} ms"
        )
    if view_like:
        out(
            "ours, enqueue from a sync view's thread under a running loop (as under daphne): "
            f"p50 {percentile(view_like, 0.5) * 1000:.2f} ms, "
            f"p99 {percentile(view_like, 0.99) * 1000:.2f} ms"
        )
    if floors is not None:
        out(
            "ours, enqueue inside the caller's transaction (its commit not counted): "
            f"p50 {percentile(floors.in_transaction, 0.5) * 1000:.2f} ms, "
            f"p99 {percentile(floors.in_transaction, 0.99) * 1000:.2f} ms"
        )
        out(
            "one durable commit on this PostgreSQL (a one-row INSERT in autocommit, the WAL "
            f"flush): p50 {percentile(floors.commit, 0.5) * 1000:.2f} ms, "
            f"p99 {percentile(floors.commit, 0.99) * 1000:.2f} ms; every enqueue in autocommit "
            "pays one"
        )
        out(f"Redis persistence here (Celery's and Dramatiq's only copy): {floors.redis}")
    out()
    out("stream: one producer enqueues while the workers run; wall time from the first enqueue")
    out("  until every job is done (row `succeeded` / result stored), so a slow enqueue caps it;")
    out("  job p50/p99: each job's time from its enqueue to its being done. Ours wakes workers")
    out("  at most once per JOBS_WAKEUP_SPACING per producer, so a burst's jobs run together.")
    out("backlog: the jobs wait before the workers start; rate from the first job done to the")
    out("  last, and the worker processes' CPU time per job meanwhile.")
    out()
    out("Dramatiq acks a message after its actor ran (a killed worker's message is redelivered")
    out("  after its heartbeat times out) but keeps messages in Redis only.")
    out("Durability: Celery's default (acks early, results only in Redis) loses a task whose")
    out("  worker is killed mid-task, and has no record of a task until it finishes. Ours records")
    out("  every job in PostgreSQL at enqueue, in the caller's transaction, and runs again a job")
    out("  whose worker died.")


def main() -> None:
    layer = redis_url(LAYER_DB)
    broker, results = redis_url(CELERY_BROKER_DB), redis_url(CELERY_RESULT_DB)
    flush_redis(layer, broker, results)
    logs = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    out(f"worker logs: {logs}")
    runs: list[Run] = []
    try:
        with bench_database(DATABASE) as database:
            setup_django(database=database, redis=layer)
            for count in WORKER_COUNTS:
                runs.append(run_ours(count, database=database, layer=layer, logs=logs))
                out(runs[-1].summary())
                runs.append(run_celery(count, broker=broker, results=results, logs=logs))
                out(runs[-1].summary())
                runs.append(run_dramatiq(count, broker=broker, logs=logs))
                out(runs[-1].summary())
            view_like = view_like_latencies(layer)
            floors = Floors(in_transaction_latencies(), commit_floor(database), "")
            floors.redis = redis_persistence(layer)
    finally:
        flush_redis(layer, broker, results)
    out()
    report(runs, view_like, floors)


if __name__ == "__main__":
    main()

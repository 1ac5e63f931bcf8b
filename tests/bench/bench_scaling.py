"""What a second worker process adds: CPU-bound jobs on one channel, one worker then two.

BENCH_SCALING_JOBS jobs (default 40) that each spin the CPU for 0.3 s wait on `compute`; then
one (or two) `manage.py runworker compute` processes start together, and the figure is the
time from the first job's start to the last job's end, from the rows. Ideally two workers on
two cores take half the time; the machine's other load makes it less. Three rounds, medians
and the ratio printed (the fairness of the shares is a test: tests/workers/test_scaling.py).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from tests.bench import (
    PRODUCTION_ENV,
    BenchProcess,
    bench_database,
    flush_redis,
    out,
    redis_url,
    setup_django,
    wait_for,
)

JOBS = int(os.environ.get("BENCH_SCALING_JOBS", "40"))
SECONDS_PER_JOB = 0.3
ROUNDS = int(os.environ.get("BENCH_SCALING_ROUNDS", "3"))
LAYER_DB = 2
RUN_TIMEOUT = 120.0


def run_round(workers: int, *, database: str, layer: str, logs: Path, marks: Path) -> float:
    """Queue the jobs first, start the workers together: seconds from first start to last end."""
    from tests.tasks import burn_cpu
    from workers.models import Job

    Job.objects.all().delete()
    ids = [int(burn_cpu.enqueue(SECONDS_PER_JOB, str(marks)).id) for _ in range(JOBS)]
    env = {
        **os.environ,
        **PRODUCTION_ENV,
        "DATABASE_URL": database,
        "REDIS_URL": layer,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    processes = [
        BenchProcess(
            f"worker-{n}",
            [sys.executable, "manage.py", "runworker", "compute"],
            env,
            logs / f"{workers}w-{n}.log",
        )
        for n in range(workers)
    ]
    try:
        for process in processes:
            process.wait_for_output("listening on channels", 30)
        jobs = Job.objects.filter(pk__in=ids)
        wait_for(
            lambda: jobs.filter(status=Job.Status.SUCCEEDED).count() == JOBS,
            RUN_TIMEOUT,
            f"{JOBS} jobs on {workers} workers",
            interval=0.1,
        )
    finally:
        for process in processes:
            process.stop()
    started = min(job.started_at for job in jobs if job.started_at)
    finished = max(job.finished_at for job in jobs if job.finished_at)
    return (finished - started).total_seconds()


def main() -> None:
    layer = redis_url(LAYER_DB)
    logs = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    out(f"worker logs: {logs}")
    times: dict[int, list[float]] = {1: [], 2: []}
    with bench_database("pipeline_bench_scaling") as database:
        setup_django(database=database, redis=layer)
        for round_ in range(ROUNDS):
            for workers in times:
                flush_redis(layer)
                seconds = run_round(
                    workers, database=database, layer=layer, logs=logs, marks=logs / "marks"
                )
                times[workers].append(seconds)
                out(f"round {round_ + 1}: {workers} worker(s) {seconds:.2f} s")
    flush_redis(layer)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    ratios = [a / b for a, b in zip(times[1], times[2], strict=True)]
    out()
    out(f"{JOBS} jobs x {SECONDS_PER_JOB} s of CPU, {os.cpu_count()} CPUs, {ROUNDS} rounds")
    out(f"one worker:  median {one:.2f} s")
    out(f"two workers: median {two:.2f} s")
    out(
        f"speed-up:    median {statistics.median(ratios):.2f}x "
        f"(per round {', '.join(f'{r:.2f}' for r in ratios)}; ideal 2.00x on 2 free cores)"
    )


if __name__ == "__main__":
    main()

"""Tasks the tests enqueue. They write their side effects to files so that a test can count
how often a task really ran, across processes."""

import os
import time
from pathlib import Path
from typing import Any

from workers.backends import JobContext, task
from workers.exceptions import PermanentFailure


def mark(directory: str, name: str) -> None:
    """Record one run in `directory` (append-only: a second run shows as a second line)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    with (path / name).open("a") as f:
        f.write(f"{os.getpid()}\n")


@task(queue_name="compute", takes_context=True)
def count_up(context: JobContext, steps: int, delay: float, marks: str = "") -> dict[str, Any]:
    for step in range(1, steps + 1):
        time.sleep(delay)
        context.progress(step * 100 // steps, f"step {step} of {steps}")
    if marks:
        mark(marks, f"count_up-{context.task_result.id}")
    return {"steps": steps, "pid": os.getpid()}


@task(queue_name="compute")
def burn_cpu(seconds: float, marks: str) -> int:
    """Spin the CPU for `seconds` of process time, then record which worker did it."""
    end = time.process_time() + seconds
    n = 0
    while time.process_time() < end:
        n += 1
    mark(marks, f"burn-{os.getpid()}-{time.monotonic_ns()}")
    return os.getpid()


@task(queue_name="compute")
def trivial(marks: str = "") -> str:
    if marks:
        mark(marks, "trivial")
    return "ok"


@task(queue_name="compute", max_attempts=5, time_limit=42)
def limited() -> str:
    """A task with the runtime's own options."""
    return "ok"


@task(queue_name="compute")
def always_fails(message: str) -> None:
    raise RuntimeError(message)


@task(queue_name="compute")
def bad_input(message: str) -> None:
    raise PermanentFailure(message)


@task(queue_name="compute")
def sleepy(seconds: float) -> str:
    # Short sleeps: the time limit interrupts Python code between them.
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.02)
    return "woke"


@task(queue_name="compute")
def sleeps_in_c(seconds: float, marks: str = "") -> str:
    # One long C call: an exception raised in the thread waits for it to return.
    time.sleep(seconds)
    if marks:
        mark(marks, "sleeps_in_c-returned")
    return "woke"


@task(queue_name="compute")
def returns_a_set() -> set[int]:
    return {1, 2}

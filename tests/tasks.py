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


# The tasks of Django's own tests/tasks/tasks.py, for the contract tests
# (tests/workers/test_backends.py, test_attempt.py), on this project's channel.


@task(queue_name="compute")
def noop_task(*args: Any, **kwargs: Any) -> None:
    return None


@task(queue_name="compute")
def calculate_meaning_of_life() -> int:
    return 42


@task(queue_name="compute")
def failing_task_value_error() -> None:
    raise ValueError("This Task failed due to ValueError")


@task(queue_name="compute")
def failing_task_system_exit() -> None:
    raise SystemExit("This Task failed due to SystemExit")


@task(queue_name="compute")
def failing_task_keyboard_interrupt() -> None:
    raise KeyboardInterrupt("This Task failed due to KeyboardInterrupt")


@task(queue_name="compute")
def complex_exception() -> None:
    raise ValueError(ValueError("This task failed"))


@task(queue_name="compute")
def complex_return_value() -> Any:
    # Something which is neither JSON nor picklable.
    return lambda: True


@task(queue_name="compute")
def exit_task() -> None:
    raise SystemExit(1)


@task(queue_name="compute", takes_context=True)
def get_task_id(context: JobContext) -> str:
    return context.task_result.id


@task(queue_name="compute", takes_context=True)
def context_attempt(context: JobContext, attempt: int) -> int:
    assert context.attempt == attempt
    return context.attempt


@task(queue_name="compute")
def returns_nan() -> float:
    # Django's normaliser lets NaN through; a JSON column does not.
    return float("nan")


@task(queue_name="compute", takes_context=True)
def fails_twice(context: JobContext, marks: str) -> str:
    """Fails on its first two attempts, succeeds on the third."""
    mark(marks, "fails_twice")
    if context.attempt < 3:
        raise RuntimeError(f"attempt {context.attempt} fails")
    return "third time lucky"


@task(queue_name="compute", takes_context=True)
def waits_for_cancel(context: JobContext, seconds: float) -> str:
    """Runs until cancelled (then returns cleanly) or `seconds` pass."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if context.cancelled:
            return "stopped when cancelled"
        time.sleep(0.02)
    return "never cancelled"


@task(queue_name="compute", unique=lambda upload_id: upload_id)
def unique_per_upload(upload_id: int) -> int:
    return upload_id


@task(queue_name="compute", concurrency=1, limit_key=lambda key, seconds, marks: key)
def one_at_a_time(key: str, seconds: float, marks: str) -> str:
    """At most one running per `key`; records its start and end."""
    mark(marks, f"{key}-{time.monotonic_ns()}-start")
    time.sleep(seconds)
    mark(marks, f"{key}-{time.monotonic_ns()}-end")
    return key


@task(queue_name="compute", rate_limit="2/h", limit_key=lambda key: key)
def twice_an_hour(key: str) -> str:
    return key


def not_a_task() -> None:
    """A plain function: a job naming it must fail, not crash the worker."""

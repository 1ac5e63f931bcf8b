"""Messages of the job runtime: the wake-up on a named channel and the progress events.

Payloads are small and JSON-safe; their `type` names are the constants below, shared by the
senders (workers) and receivers (the jobs websocket).
"""

from typing import Any, NotRequired, TypedDict

JOB_WAKEUP = "job.wakeup"
JOB_PROGRESS = "job.progress"
JOB_DONE = "job.done"
JOB_FAILED = "job.failed"
JOBS_SNAPSHOT = "jobs.snapshot"


class WakeUp(TypedDict):
    """Sent on a named channel: a job on it may be ready. Carries an id, never a model."""

    type: str
    job: int


class JobEvent(TypedDict):
    """Sent to the owner's group and the job's group when a job moves."""

    type: str
    job: int
    task: str
    channel: str
    status: str
    progress: int
    message: str
    error: NotRequired[str]
    result: NotRequired[Any]
    upload: NotRequired[int]


def user_group(user_id: int) -> str:
    return f"jobs.user.{user_id}"


def job_group(job_id: int) -> str:
    return f"jobs.job.{job_id}"

"""Errors of the job runtime. Their messages are shown to users as they are."""


class JobError(Exception):
    """Base class of the job runtime's errors."""


class PermanentFailure(JobError):
    """Raised by a task when retrying cannot help (bad input): the job fails at once."""


class TimeLimitExceeded(JobError):
    """Raised inside a task's thread when the task ran past its time limit."""


class JobLost(JobError):
    """The job was taken from this worker (cancelled, or handed to another worker)."""


class JobCancelled(JobLost):
    """The job was cancelled while it ran: raised by `context.progress()`, or inside the task
    once its cancel grace is over."""

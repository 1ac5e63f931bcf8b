"""Errors of the uploads app. Their messages are shown to users as they are."""

from wire import errors


class MediaError(Exception):
    """Base class of the uploads app's errors; `status` is the HTTP status to answer with,
    `code` the error's code on the wire."""

    status = 400
    code = "rejected"


class UploadRejected(MediaError):
    """A file that is not accepted: the message names the file and the reason."""


class UploadTooLarge(UploadRejected):
    status = 413
    code = errors.TOO_LARGE


class UploadRateLimited(MediaError):
    """More uploads than a user may make in a while; `retry_after` is the wait in seconds."""

    status = 429
    code = errors.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UploadOverQuota(MediaError):
    """More stored bytes than a user may keep."""

    status = 413
    code = "over_quota"


class UploadsBusy(MediaError):
    """The process is checking as many uploads as it may at once."""

    status = 503
    code = "busy"


class UploadAbandoned(MediaError):
    """The client went away before its upload was accepted: nothing is kept."""

    status = 499
    code = "abandoned"

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


class UploadNotFound(MediaError):
    """No such upload of this user (another user's is not found either)."""

    status = 404
    code = errors.NOT_FOUND


class UploadExpired(MediaError):
    """A resumable upload that was paused past UPLOAD_RESUMABLE_EXPIRE and deleted."""

    status = 410
    code = "expired"


class UploadOffsetMismatch(MediaError):
    """A resumable upload's bytes sent from another offset than the server's: the client
    asks for the offset (HEAD) and sends from there."""

    status = 409
    code = "offset_mismatch"


class UploadChecksumMismatch(MediaError):
    """A chunk whose bytes do not match the checksum sent with them; nothing of it is kept."""

    # tus' checksum extension's own status.
    status = 460
    code = "checksum_mismatch"

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

"""Errors of the uploads app. Their messages are shown to users as they are."""


class MediaError(Exception):
    """Base class of the uploads app's errors; `status` is the HTTP status to answer with."""

    status = 400


class UploadRejected(MediaError):
    """A file that is not accepted: the message names the file and the reason."""


class UploadTooLarge(UploadRejected):
    status = 413

"""One shape for every error a client receives, over HTTP or a websocket:

    {"type": "error", "code": "too_large", "error": "photo.jpg: the file is 30.1 MB, ..."}

`type` says what the message is ("error"; a websocket may use its own frame type, such as
"chat.error"), `code` is for programs (the page reacts without parsing text), `error` is for
people and is shown as it is. A message may add keys of its own (`client_id`, `retry_after`).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, cast

from django.http import JsonResponse

ERROR = "error"

# Codes shared by the apps; an app may add its own.
BAD_FRAME = "bad_frame"
BAD_REQUEST = "bad_request"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
TOO_LARGE = "too_large"
UNAUTHENTICATED = "unauthenticated"
# A service the site needs (the database, Redis) does not answer: try again (503).
UNAVAILABLE = "unavailable"


class ErrorPayload(TypedDict):
    type: str
    code: str
    error: str
    client_id: NotRequired[str]
    retry_after: NotRequired[float]


def error_payload(*, code: str, error: str, type: str = ERROR, **extra: Any) -> ErrorPayload:
    """The error as every client receives it."""
    return cast(ErrorPayload, {"type": type, "code": code, "error": error, **extra})


def error_response(*, code: str, error: str, status: int, **extra: Any) -> JsonResponse:
    """An HTTP answer carrying the error (status 4xx or 5xx)."""
    return JsonResponse(error_payload(code=code, error=error, **extra), status=status)

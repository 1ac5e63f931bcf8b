"""A moment's outage of what requests need (PostgreSQL restarting, Redis failing over) as the
web server's log tells it: one warning at the first request that failed on it (the site's
handler500 answers each such request 503), one line at the first request answered again; not
a traceback a request."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

from wire.outage import Outage

logger = logging.getLogger(__name__)

requests_outage = Outage("requests' database or message broker", logger)


def request_failed(error: BaseException, response: HttpResponse) -> None:
    """A request failed on an outage: counted, logged if it is the first; Django's own line
    for the request (django.request, a traceback each) left out."""
    requests_outage.failed(error)
    response._has_been_logged = True  # type: ignore[attr-defined]


@sync_and_async_middleware
def outage_end(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    """The first request answered (below 500) after requests failed on an outage logs its end."""

    def answered(response: HttpResponse) -> HttpResponse:
        if requests_outage.failing and response.status_code < 500:
            requests_outage.answered()
        return response

    if iscoroutinefunction(get_response):

        async def middleware_async(request: HttpRequest) -> HttpResponse:
            response: Awaitable[HttpResponse] = get_response(request)
            return answered(await response)

        return middleware_async

    def middleware(request: HttpRequest) -> HttpResponse:
        return answered(get_response(request))

    return middleware

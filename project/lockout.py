"""The log-in lockout, on django-axes: failures counted in the database (shared by every web
process, with or without Redis), per username and per client address, each with its own limit
(settings.ACCOUNTS), and a refusal that says how long to wait."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from project.throttle import too_many_attempts

# Each of AXES_LOCKOUT_PARAMETERS and the ACCOUNTS limit that applies to it.
LIMITS = {
    "username": "LOGIN_FAILURES_PER_USERNAME",
    "ip_address": "LOGIN_FAILURES_PER_ADDRESS",
}


class LockoutBackend(AxesStandaloneBackend):
    """axes' backend (it refuses a locked-out attempt before any password is checked), for
    log-ins that come with a request, as every log-in form's does. One without (the test
    client's `login()`, a shell) has no address to count by and is left to UserBackend."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)  # type: ignore[no-any-return]

    async def aauthenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        await sync_to_async(self.authenticate)(request, username, password, **kwargs)


def parameter_limits() -> list[int]:
    return [
        int(settings.ACCOUNTS[LIMITS[parameter]]) for parameter in settings.AXES_LOCKOUT_PARAMETERS
    ]


def failures(attempts: QuerySet[Any]) -> int:
    return int(attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0)


class LockoutHandler(AxesDatabaseHandler):  # type: ignore[misc]
    """axes' database handler, with a limit per lockout parameter instead of one for all."""

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        """The failures of the parameter nearest its own limit, scaled to AXES_FAILURE_LIMIT
        (the username's), which is what axes compares this number with."""
        scale = int(settings.AXES_FAILURE_LIMIT)
        attempts = self.get_user_attempts(request, credentials)
        return max(
            failures(matching) * scale // limit
            for matching, limit in zip(attempts, parameter_limits(), strict=True)
        )

    def lockout_ends(
        self, request: HttpRequest, credentials: dict[str, Any] | None = None
    ) -> datetime | None:
        """When every limit this request is over will have let go: failures count for
        LOGIN_COOLOFF after they happened, oldest first out."""
        cool_off = get_cool_off(request)
        ends: datetime | None = None
        attempts = self.get_user_attempts(request, credentials)
        for matching, limit in zip(attempts, parameter_limits(), strict=True):
            rows = list(
                matching.order_by("attempt_time").values_list(
                    "attempt_time", "failures_since_start"
                )
            )
            remaining = sum(count for _, count in rows)
            for attempt_time, count in rows:
                if remaining < limit:
                    break
                remaining -= count
                ends = max(ends, attempt_time + cool_off) if ends else attempt_time + cool_off
        return ends


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the 429 page with the time left."""
    # axes' async middleware passes the credentials second.
    if not isinstance(credentials, dict):
        credentials = original_response if isinstance(original_response, dict) else None
    handler = AxesProxyHandler.get_implementation()
    ends = (
        handler.lockout_ends(request, credentials) if isinstance(handler, LockoutHandler) else None
    )
    wait = (ends - timezone.now()).total_seconds() if ends else settings.ACCOUNTS["LOGIN_COOLOFF"]
    return too_many_attempts(request, action="log in", wait=wait)

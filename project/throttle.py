"""Limits on the account forms: whose attempts count together, and the page a refused one gets.

Log-ins are limited by django-axes (project/lockout.py); sign-up, password reset and password
change by the project's fixed-window limiter (wire/ratelimit.py), per client address or user.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render

from wire import ratelimit

View = Callable[..., HttpResponseBase]


def client_address(request: HttpRequest) -> str | None:
    """The address whose attempts count together: REMOTE_ADDR (daphne --proxy-headers sets it
    from nginx's X-Forwarded-For), an IPv6 client's /64 network (one host usually has the
    whole network to pick addresses from), None without an address."""
    raw = request.META.get("REMOTE_ADDR") or ""
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False).network_address)
    return str(address)


def wait_text(seconds: float) -> str:
    """`seconds` for people, rounded up: "40 seconds", "1 minute", "15 minutes"."""
    if seconds < 60:
        whole = max(1, math.ceil(seconds))
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def too_many_attempts(request: HttpRequest, *, action: str, wait: float) -> HttpResponse:
    """429 with the page that says what was refused and how long to wait (and Retry-After)."""
    response = render(
        request,
        "registration/too_many_attempts.html",
        {"action": action, "wait": wait_text(wait)},
        status=429,
    )
    response["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def by_address(request: HttpRequest) -> str:
    return f"address:{client_address(request) or 'unknown'}"


def by_user(request: HttpRequest) -> str:
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return by_address(request)


def by_email(request: HttpRequest) -> str | None:
    email = request.POST.get("email", "").strip().lower()
    return f"email:{email}" if email else None


def throttled(
    scope: str,
    *,
    action: str,
    window: str,
    limits: list[tuple[Callable[[HttpRequest], str | None], str]],
) -> Callable[[View], View]:
    """Count each POST to the view under each (key, ACCOUNTS limit name) of `limits` in turn;
    at the first one past its limit, answer 429 without running the view (and without
    counting the rest). GETs (the empty form) are free."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method == "POST":
                for key, limit in limits:
                    name = key(request)
                    if name is None:
                        continue
                    wait = ratelimit.hit_sync(
                        f"accounts:{scope}:{name}",
                        limit=int(settings.ACCOUNTS[limit]),
                        window=settings.ACCOUNTS[window],
                    )
                    if wait is not None:
                        return too_many_attempts(request, action=action, wait=wait)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator

"""The websocket Origin check: a socket is opened only by a page of this site.

Channels' AllowedHostsOriginValidator compares the Origin's host with ALLOWED_HOSTS only, so
http://site:8080 or a plain-HTTP origin passes for https://site. Here the whole origin (scheme,
host and port) must be the site's own, as the browser reached it (the Host header, which must
be an allowed host, and https when the proxy says so: SECURE_PROXY_SSL_HEADER), or one of
CSRF_TRUSTED_ORIGINS, as Django's CSRF check does for forms.
"""

from __future__ import annotations

from typing import Any

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host


def _header(scope: dict[str, Any], name: bytes) -> str:
    for header, value in scope.get("headers", []):
        if header == name:
            return str(value.decode("latin1"))
    return ""


def own_origin(scope: dict[str, Any]) -> str | None:
    """The origin of the site as this socket's browser reached it; None for a Host that is
    not an allowed host."""
    host = _header(scope, b"host")
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    secure = scope.get("scheme") == "wss"
    proxy_header: tuple[str, str] | None = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header is not None:
        name = proxy_header[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
        secure = _header(scope, name) == proxy_header[1]
    return f"{'https' if secure else 'http'}://{host.lower()}"


def origin_allowed(scope: dict[str, Any]) -> bool:
    origin = _header(scope, b"origin").lower()
    if not origin:
        return False
    trusted = {entry.lower() for entry in settings.CSRF_TRUSTED_ORIGINS}
    return origin == own_origin(scope) or origin in trusted


class SameOriginValidator:
    """ASGI middleware: refuse a websocket whose Origin is not the site's own."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)

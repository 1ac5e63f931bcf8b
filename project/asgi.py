"""The ASGI entry point: HTTP, websockets, and the named channels that workers consume."""

import inspect
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Django must be set up before the routing modules import models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from project.metrics import WebsocketMetricsMiddleware  # noqa: E402
from project.routing import channel_routes, websocket_urlpatterns  # noqa: E402


def skip_twisted_form_parsing() -> None:
    """Daphne never reads the form Twisted parses into `request.args`, yet Twisted parses every
    multipart upload before Django parses it again: over half the server's time on a 12 MB
    upload. Turn Twisted's copy off where Twisted allows it."""
    try:
        from daphne.http_protocol import WebRequest
        from twisted.web import http as twisted_http
    except ImportError:  # served by another ASGI server
        return
    parameters = inspect.signature(twisted_http.Request.__init__).parameters
    if "parsePOSTFormSubmission" not in parameters or getattr(WebRequest, "_form_off", False):
        return
    original = WebRequest.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        original(self, *args, **kwargs)

    WebRequest.__init__ = __init__  # type: ignore[method-assign]
    WebRequest._form_off = True  # type: ignore[attr-defined]


skip_twisted_form_parsing()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebsocketMetricsMiddleware(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
        "channel": ChannelNameRouter(channel_routes),
    }
)

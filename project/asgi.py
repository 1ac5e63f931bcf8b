"""The ASGI entry point: HTTP, websockets, and the named channels that workers consume."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Django must be set up before the routing modules import models.
django_asgi_app = get_asgi_application()

from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402

from project.db import closing_connections  # noqa: E402
from project.metrics import WebsocketMetricsMiddleware  # noqa: E402
from project.routing import channel_routes, websocket_urlpatterns  # noqa: E402
from project.server import tune_daphne  # noqa: E402
from wire.origin import SameOriginValidator  # noqa: E402
from wire.sockets import OutageGuard, auth_stack  # noqa: E402

tune_daphne()

application = ProtocolTypeRouter(
    {
        "http": closing_connections(django_asgi_app),
        "websocket": WebsocketMetricsMiddleware(
            SameOriginValidator(OutageGuard(auth_stack(URLRouter(websocket_urlpatterns))))
        ),
        "channel": ChannelNameRouter(channel_routes),
    }
)

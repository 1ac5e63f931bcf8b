"""The chat of the Channels tutorial (docs "Tutorial", parts 2 and 3), as the benchmark's
comparison: an async websocket consumer, one group per room, one `group_send` per message,
each connection's channel in the group, on the same channels-redis layer. Nothing is stored,
numbered, checked or replayed.

    daphne tests.bench.tutorial_chat:application
"""

from __future__ import annotations

import json
from typing import Any

from django.core.asgi import get_asgi_application

# As the tutorial's asgi.py: set Django up before importing anything that uses the ORM.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402


class ChatConsumer(AsyncWebsocketConsumer):
    """The tutorial's consumer, as it is written there (with types)."""

    room_group_name: str

    async def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{self.room_name}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code: int) -> None:
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        text_data_json = json.loads(text_data or "{}")
        message = text_data_json["message"]
        await self.channel_layer.group_send(
            self.room_group_name, {"type": "chat.message", "message": message}
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"message": event["message"]}))


websocket_urlpatterns = [re_path(r"ws/chat/(?P<room_name>\w+)/$", ChatConsumer.as_asgi())]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

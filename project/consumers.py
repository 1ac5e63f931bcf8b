"""A websocket that answers pings: a liveness check for the websocket path through daphne.
Anyone may use it (probes are not logged in); it keeps nothing and sends only answers."""

import json
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from wire.errors import BAD_FRAME, error_payload
from wire.sockets import BadFrame, SiteConsumer


class PingConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            payload: Any = SiteConsumer.decode(text_data)
        except BadFrame as bad:
            await self.send(json.dumps(error_payload(code=BAD_FRAME, error=str(bad))))
            return
        user = self.scope.get("user")
        await self.send(
            json.dumps(
                {
                    "type": "pong",
                    "echo": payload,
                    "user": user.get_username() if user and user.is_authenticated else None,
                }
            )
        )

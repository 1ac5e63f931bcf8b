"""A websocket that answers pings: a liveness check for the websocket path through daphne."""

import json
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from wire.errors import BAD_FRAME, error_payload


class PingConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            payload: Any = json.loads(text_data or "")
        except ValueError:
            await self.send(json.dumps(error_payload(code=BAD_FRAME, error="frames must be JSON")))
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

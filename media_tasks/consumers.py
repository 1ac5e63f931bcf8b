"""`/ws/jobs/`: a user's job progress, live, starting from a snapshot of unfinished jobs."""

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from wire.close import Close
from wire.errors import BAD_FRAME, error_payload
from workers import events
from workers.selectors import jobs_unfinished_for


class JobsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept first: a socket closed during the handshake shows the browser a bare 403,
            # while a close code tells the page to send the user to the login page.
            await self.accept()
            # A plain int: autobahn (daphne's websocket layer) refuses an IntEnum.
            await self.close(code=int(Close.UNAUTHENTICATED))
            return
        self.group = events.user_group(user.pk)
        # Join before reading the snapshot, so that no event falls between the two.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        jobs = await database_sync_to_async(jobs_unfinished_for)(user_id=user.pk)
        await self.send_json({"type": events.JOBS_SNAPSHOT, "jobs": jobs})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json(
            error_payload(code=BAD_FRAME, error="this socket only sends; nothing to receive")
        )

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return None

    async def job_progress(self, event: events.JobEvent) -> None:
        await self.send_json(event)

    async def job_done(self, event: events.JobEvent) -> None:
        await self.send_json(event)

    async def job_failed(self, event: events.JobEvent) -> None:
        await self.send_json(event)

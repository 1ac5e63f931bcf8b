"""`/ws/operator/`: the operators' live page of the job runtime, for staff only.

Every OVERVIEW_INTERVAL seconds it sends `{"type": "ops.overview", ...}` (workers.selectors.
jobs_operations: per channel ready/running/failed counts, the oldest ready job's age,
throughput and failure rate over the last minutes, whether it is paused; the workers alive
with their current jobs and last heartbeat). Staff with the change permission on jobs may
send `{"type": "ops.cancel"|"ops.retry", "job": id}` and
`{"type": "ops.pause"|"ops.resume", "channel": name}`; the answer is `ops.done` with what
changed, then a fresh overview. Anyone else is closed with Close.NOT_FOUND, as for a page
that does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from wire.close import Close
from wire.errors import BAD_FRAME, FORBIDDEN
from wire.sockets import SiteConsumer
from workers.models import Job
from workers.selectors import jobs_operations
from workers.services import channel_pause, channel_resume, job_cancel, job_retry

logger = logging.getLogger(__name__)

OVERVIEW_INTERVAL = 2.0
OPS_OVERVIEW = "ops.overview"
OPS_DONE = "ops.done"
OPS_ERROR = "ops.error"


def job_action(action: str, job_id: int) -> bool:
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return False
    return (job_cancel if action == "cancel" else job_retry)(job=job)


def channel_action(action: str, channel: str, by: str) -> bool:
    if action == "pause":
        return channel_pause(channel=channel, by=by)
    return channel_resume(channel=channel)


class OperatorConsumer(SiteConsumer):
    error_type = OPS_ERROR
    ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.user.is_staff:
            await self.refuse(Close.NOT_FOUND)
            return
        await self.accept()
        self.ticker = asyncio.create_task(self.tick())

    async def stop(self) -> None:
        if self.ticker is not None:
            self.ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.ticker

    async def tick(self) -> None:
        while True:
            await self.send_overview()
            await asyncio.sleep(OVERVIEW_INTERVAL)

    async def send_overview(self) -> None:
        overview = await database_sync_to_async(jobs_operations)()
        await self.send_json({"type": OPS_OVERVIEW, **overview})

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        kind = str(frame.get("type", ""))
        action = kind.removeprefix("ops.")
        if not await database_sync_to_async(self.user.has_perm)("workers.change_job"):
            await self.send_error(code=FORBIDDEN, error="changing jobs needs the permission")
            return
        if action in {"cancel", "retry"} and isinstance(frame.get("job"), int):
            done = await database_sync_to_async(job_action)(action, frame["job"])
            answer = {"job": frame["job"]}
        elif action in {"pause", "resume"} and frame.get("channel") in settings.WORKER_CHANNELS:
            done = await database_sync_to_async(channel_action)(
                action, frame["channel"], self.user.get_username()
            )
            answer = {"channel": frame["channel"]}
        else:
            await self.send_error(code=BAD_FRAME, error=f"unknown request {kind!r}")
            return
        logger.info(
            "user=%s %s %s: %s", self.user.pk, action, answer, "done" if done else "no change"
        )
        await self.send_json({"type": OPS_DONE, "action": action, "changed": done, **answer})
        await self.send_overview()

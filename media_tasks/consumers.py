"""`/ws/jobs/`: a user's job progress, live, starting from a snapshot of unfinished jobs.
What every socket of the site shares (login, limits, session checks, frames) is in
wire/sockets.py."""

from channels.db import database_sync_to_async

from wire.sockets import SiteConsumer
from workers import events
from workers.selectors import jobs_unfinished_for

# The snapshot names at most this many unfinished jobs, the newest (the page reads the rest
# of what it shows from the API).
SNAPSHOT_MAX = 200


class JobsConsumer(SiteConsumer):
    group = ""

    async def start(self) -> None:
        self.group = events.user_group(self.user.pk)
        # Join before reading the snapshot, so that no event falls between the two.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        jobs = await database_sync_to_async(jobs_unfinished_for)(
            user_id=self.user.pk, limit=SNAPSHOT_MAX + 1
        )
        await self.send_json(
            {
                "type": events.JOBS_SNAPSHOT,
                "jobs": jobs[-SNAPSHOT_MAX:],
                "truncated": len(jobs) > SNAPSHOT_MAX,
            }
        )

    async def stop(self) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def job_progress(self, event: events.JobEvent) -> None:
        await self.send_json(event)

    async def job_done(self, event: events.JobEvent) -> None:
        await self.send_json(event)

    async def job_failed(self, event: events.JobEvent) -> None:
        await self.send_json(event)

    async def upload_ready(self, event: dict[str, object]) -> None:
        await self.send_json(event)

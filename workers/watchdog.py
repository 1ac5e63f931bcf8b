"""The watchdog: one task per worker, on its event loop, that looks after the running jobs.

Every tick it announces a job that runs longer than a tick (a quicker one sends only its
outcome), interrupts a job past its time limit (and gives up on its thread if the task does
not stop within UNWIND_GRACE, being stuck in C code), settles a batch whose running job
outlasts the batch window so that its other jobs are free for idle workers, and touches the
running job's heartbeat, by which the recovery sweep tells a live worker from a dead one.

It also looks every CANCEL_POLL whether a running job was cancelled: the task then sees it
(`context.cancelled`, and `context.progress()` raises JobCancelled), and once the cancel is
JOBS["CANCEL_GRACE"] seconds old, the watchdog interrupts the task with JobCancelled, and
gives up on its thread like on a time limit if it does not stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from channels.db import database_sync_to_async
from django.conf import settings

from wire.outage import Outage
from workers.attempt import Attempt
from workers.claim import Batch, ChannelDrain
from workers.exceptions import JobCancelled, JobLost, TimeLimitExceeded
from workers.models import Job

logger = logging.getLogger(__name__)

# How often the watchdog looks at running jobs (time limits, overlong batches).
TICK = 0.05
# After a time limit, how long the task's thread gets to unwind before it is abandoned.
UNWIND_GRACE = 5.0
# How often a running job's row is asked whether it was cancelled.
CANCEL_POLL = 1.0


def job_cancelled(job_id: int) -> bool:
    return Job.objects.filter(pk=job_id, status=Job.Status.CANCELLED).exists()


class Watchdog:
    def __init__(self, drains: Iterable[ChannelDrain]) -> None:
        self.drains = list(drains)
        self.busy = asyncio.Event()
        self.heartbeat_interval: float = settings.JOBS["HEARTBEAT_INTERVAL"]
        self.batch_window: float = settings.JOBS["BATCH_WINDOW"]
        # When each running job's heartbeat was last written.
        self.beats: dict[int, float] = {}
        # When each running job was last asked whether it was cancelled.
        self.polls: dict[int, float] = {}
        self.cancel_grace: float = settings.JOBS["CANCEL_GRACE"]
        # A check fails mostly while the database restarts: one line then, one once it works.
        self.checks = Outage("watchdog check", logger)

    def wake(self) -> None:
        """A batch started: watch again."""
        self.busy.set()

    async def watch(self) -> None:
        while True:
            if not any(drain.batch for drain in self.drains):
                self.busy.clear()
                await self.busy.wait()
            await asyncio.sleep(TICK)
            try:
                await self.check()
            except Exception as error:
                self.checks.failed(error)
            else:
                self.checks.answered()

    async def check(self) -> None:
        now = time.monotonic()
        running = set()
        for drain in self.drains:
            batch = drain.batch
            attempt = batch.current if batch is not None else None
            if batch is None or attempt is None or batch.abandoned:
                continue
            job = attempt.job
            running.add(job.pk)
            if now - attempt.started >= TICK:
                batch.notice(attempt)
            if now > attempt.deadline:
                await self.stop_overdue(drain, batch, attempt)
                continue
            if attempt.cancelled_at is not None:
                await self.stop_cancelled(drain, batch, attempt)
                continue
            if now - attempt.started >= TICK and now - self.polls.get(job.pk, 0) > CANCEL_POLL:
                self.polls[job.pk] = now
                if await database_sync_to_async(job_cancelled)(job.pk):
                    self.cancel_seen(attempt)
                    continue
            if now - attempt.started > self.batch_window and (batch.waiting or batch.succeeded):
                await database_sync_to_async(drain.settle)(batch)
            if now - self.beats.get(job.pk, attempt.started) > self.heartbeat_interval:
                self.beats[job.pk] = now
                if not await database_sync_to_async(job.heartbeat)():
                    if await database_sync_to_async(job_cancelled)(job.pk):
                        self.cancel_seen(attempt)
                        continue
                    logger.warning("job=%s is no longer ours; stopping it", job.pk)
                    attempt.interrupt(JobLost)
        for pk in self.beats.keys() - running:
            del self.beats[pk]
        for pk in self.polls.keys() - running:
            del self.polls[pk]

    def cancel_seen(self, attempt: Attempt) -> None:
        """The running job was cancelled: let the task see it, and start its grace."""
        logger.warning(
            "job=%s cancelled while running; the task has %g s to stop",
            attempt.job.pk,
            self.cancel_grace,
        )
        attempt.reporter.cancelled = True
        attempt.cancelled_at = time.monotonic()

    async def stop_cancelled(self, drain: ChannelDrain, batch: Batch, attempt: Attempt) -> None:
        """A cancelled task past its grace is interrupted; one stuck in C code past that,
        abandoned with its thread (its job is cancelled already: nothing to record)."""
        assert attempt.cancelled_at is not None
        now = time.monotonic()
        if now - attempt.cancelled_at < self.cancel_grace:
            return
        if attempt.interrupted_at is None:
            logger.error("job=%s did not stop after its cancel; interrupting", attempt.job.pk)
            attempt.interrupt(JobCancelled)
            return
        if now - attempt.interrupted_at < UNWIND_GRACE:
            return
        drain.abandon(batch)
        logger.error(
            "job=%s did not stop within %g s; abandoning its thread", attempt.job.pk, UNWIND_GRACE
        )
        await database_sync_to_async(drain.settle)(batch)

    async def stop_overdue(self, drain: ChannelDrain, batch: Batch, attempt: Attempt) -> None:
        job = attempt.job
        if attempt.interrupted_at is None:
            logger.error("job=%s over its time limit of %g s; interrupting", job.pk, job.time_limit)
            attempt.interrupt(TimeLimitExceeded)
            return
        if time.monotonic() - attempt.interrupted_at < UNWIND_GRACE:
            return
        # Stuck in C code: record the failure here, settle the batch and give the channel a
        # new thread.
        drain.abandon(batch)
        logger.error("job=%s did not stop within %g s; abandoning its thread", job.pk, UNWIND_GRACE)
        await database_sync_to_async(attempt.fail)(
            f"took longer than its time limit of {job.time_limit:g} s", retry=False
        )
        await database_sync_to_async(drain.settle)(batch)

"""Recurring jobs: cron-like schedules declared in settings (JOBS["SCHEDULE"]), each due time
enqueued once across all workers, and none skipped across a restart.

    JOBS["SCHEDULE"] = {
        "housekeeping": {"task": "project.tasks.housekeeping", "cron": "17 3 * * *"},
    }

The recovery sweep (workers/recover.py), which one worker runs at a time under its lease,
enqueues what is due. Each schedule's last enqueued due time is a row (`Schedule`), locked
while the sweep enqueues the next ones and advanced in the same transaction, so a due time
is enqueued once even if two sweeps overlap; due times missed while no worker ran are
enqueued when one runs again, oldest first, at most CATCH_UP per sweep. A schedule seen for
the first time starts from now. Times are in UTC; a job is enqueued within
JOBS["SWEEP_INTERVAL"] of its due time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cronsim import CronSim, CronSimError
from django.conf import settings
from django.db import IntegrityError, transaction
from django.tasks import Task
from django.utils import timezone
from django.utils.module_loading import import_string

from workers.models import Schedule

logger = logging.getLogger(__name__)

# Due times one sweep enqueues per schedule at most (after a long stop, the next sweeps go on).
CATCH_UP = 100


@dataclass(frozen=True)
class Recurring:
    """One entry of JOBS["SCHEDULE"]."""

    name: str
    task: str
    cron: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def due_after(self, moment: datetime, until: datetime) -> list[datetime]:
        """The due times after `moment`, up to `until`, at most CATCH_UP of them."""
        due: list[datetime] = []
        for when in CronSim(self.cron, moment):
            if when > until or len(due) >= CATCH_UP:
                break
            due.append(when)
        return due


def recurring() -> list[Recurring]:
    """JOBS["SCHEDULE"], checked: a bad entry raises ValueError naming it."""
    found = []
    for name, entry in settings.JOBS["SCHEDULE"].items():
        try:
            item = Recurring(name=name, **entry)
            CronSim(item.cron, timezone.now())
        except (TypeError, CronSimError) as error:
            raise ValueError(f"JOBS['SCHEDULE'][{name!r}]: {error}") from None
        found.append(item)
    return found


def schedules_enqueue_due(now: datetime | None = None) -> int:
    """Enqueue every due time of every schedule not enqueued yet; how many were."""
    now = now or timezone.now()
    enqueued = 0
    for item in recurring():
        enqueued += _enqueue_due(item, now)
    return enqueued


def _enqueue_due(item: Recurring, now: datetime) -> int:
    with transaction.atomic():
        row = Schedule.objects.select_for_update().filter(name=item.name).first()
        if row is None:
            try:
                with transaction.atomic():
                    Schedule.objects.create(name=item.name, last_due_at=now)
            except IntegrityError:
                pass  # another sweep saw it first
            return 0
        due = item.due_after(row.last_due_at, now)
        if not due:
            return 0
        task = import_string(item.task)
        if not isinstance(task, Task):
            raise ValueError(f"JOBS['SCHEDULE'][{item.name!r}]: {item.task!r} is not a task")
        for when in due:
            _enqueue(item, task, when)
        row.last_due_at = due[-1]
        row.save(update_fields=["last_due_at"])
    return len(due)


def _enqueue(item: Recurring, task: Task[Any, Any], due: datetime) -> None:
    from workers.backends import enqueue_for

    with enqueue_for(schedule=item.name, due=due.isoformat()):
        result = task.enqueue(*item.args, **item.kwargs)
    logger.info("schedule=%s due=%s enqueued job=%s", item.name, due.isoformat(), result.id)

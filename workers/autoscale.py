"""Workers that scale themselves: how many `pipeline-worker@<channel>-<n>` instances a host
runs for each channel, from its queue (`manage.py autoscale`, run by a timer).

Three steps, kept apart: `queues_measure()` asks the database how each channel's queue
stands; `instances_target()` decides, a pure function of that and of the instances running;
`Units` starts and stops them (systemd's `systemctl`, or anything with the same three calls).
Every host runs its own autoscaler on the shared queue: each adds at most `step` instances a
run, so that several hosts seeing one burst add a few each rather than all their maximum.
"""

from __future__ import annotations

import logging
import math
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from workers.models import Job, PausedChannel

logger = logging.getLogger(__name__)

UNIT_PREFIX = "pipeline-worker@"
# The instances the autoscaler owns: one channel, a copy number (deploy/bin/runworker_instance.py
# reads the same names). Instances of several channels (compute_thumbnails-1) are left alone.
INSTANCE = re.compile(r"^(?P<channel>[a-zA-Z\d\-.]+)-(?P<copy>\d+)$")


@dataclass(frozen=True)
class Queue:
    """How a channel's queue stands. Ages in seconds; None when there is no such job."""

    channel: str
    ready: int
    running: int
    oldest_ready_age: float | None
    # Since a worker last started one of the channel's jobs: how long the workers have idled.
    last_start_age: float | None


@dataclass(frozen=True)
class Policy:
    """When to add and remove instances (settings.AUTOSCALE, documented in the README)."""

    min_instances: int
    max_instances: int
    # Add instances when the oldest ready job has waited longer than this, or when there are
    # more ready jobs than this per instance.
    scale_up_age: float
    ready_per_instance: int
    # Remove one instance a run when nothing is ready, fewer jobs run (on all hosts) than
    # there are instances, and no job of the channel has started for this long.
    scale_down_idle: float
    # At most this many instances started per run.
    step: int

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> Policy:
        policy = cls(**{name.lower(): value for name, value in values.items()})
        if not 0 <= policy.min_instances <= policy.max_instances:
            raise ValueError(
                f"autoscale bounds {policy.min_instances}..{policy.max_instances}: "
                "need 0 <= AUTOSCALE_MIN_INSTANCES <= AUTOSCALE_MAX_INSTANCES"
            )
        if policy.ready_per_instance < 1 or policy.step < 1:
            raise ValueError("AUTOSCALE_READY_PER_INSTANCE and AUTOSCALE_STEP must be at least 1")
        return policy


def instances_target(queue: Queue, *, current: int, policy: Policy) -> int:
    """How many instances the channel should have, given its queue and `current` instances.

    Hysteresis: instances are added as soon as jobs wait (their age or their number), but
    removed only after the channel has had nothing ready for `scale_down_idle` seconds, one
    per run; between the two the count holds, so that a queue hovering at a threshold does
    not start and stop workers on every run.
    """
    low, high = policy.min_instances, policy.max_instances
    wanted = current
    if queue.ready:
        by_count = math.ceil(queue.ready / policy.ready_per_instance)
        waited = queue.oldest_ready_age is not None and queue.oldest_ready_age > policy.scale_up_age
        wanted = max(current, by_count, current + 1 if waited else 0)
        wanted = min(wanted, current + policy.step)
    else:
        idle = queue.last_start_age is None or queue.last_start_age >= policy.scale_down_idle
        if idle and queue.running < current:
            wanted = current - 1
    return max(low, min(high, wanted))


def queues_measure(channels: Iterable[str], now: datetime | None = None) -> dict[str, Queue]:
    """Each channel's ready and running jobs, the age of its oldest ready job and of its
    last start: two grouped queries on the job table's partial indexes. A paused channel has
    nothing ready (its jobs wait for the operator, not for workers)."""
    now = now or timezone.now()
    names = list(channels)
    paused = set(PausedChannel.objects.filter(name__in=names).values_list("name", flat=True))
    ready: dict[str, dict[str, Any]] = {
        row["channel"]: dict(row)
        for row in Job.objects.ready()
        .filter(channel__in=set(names) - paused)
        .values("channel")
        .annotate(n=Count("id"), oldest=Min("run_after"))
        .order_by()
    }
    active: dict[str, dict[str, Any]] = {
        row["channel"]: dict(row)
        for row in Job.objects.filter(channel__in=names)
        .filter(Q(status=Job.Status.RUNNING) | Q(last_attempted_at__isnull=False))
        .values("channel")
        .annotate(
            running=Count("id", filter=Q(status=Job.Status.RUNNING)),
            last_start=Max("last_attempted_at"),
        )
        .order_by()
    }

    def age(moment: datetime | None) -> float | None:
        return None if moment is None else max(0.0, (now - moment).total_seconds())

    return {
        name: Queue(
            channel=name,
            ready=ready.get(name, {}).get("n", 0),
            running=active.get(name, {}).get("running", 0),
            oldest_ready_age=age(ready.get(name, {}).get("oldest")),
            last_start_age=age(active.get(name, {}).get("last_start")),
        )
        for name in names
    }


class Units(Protocol):
    """What the autoscaler needs of the service manager."""

    def active(self) -> list[str]:
        """The instance names (`thumbnails-2`) of the worker units running or starting."""

    def start(self, instance: str) -> None: ...

    def stop(self, instance: str) -> None: ...


class Systemctl:
    """Units through `systemctl`, on this host. A stop is graceful: the worker finishes (or
    hands back) its job within its unit's stop timeout, and the autoscaler waits for none."""

    def __init__(self, systemctl: Sequence[str] = ("systemctl",)) -> None:
        self.systemctl = list(systemctl)

    def active(self) -> list[str]:
        listed = subprocess.run(
            [
                *self.systemctl,
                "list-units",
                "--plain",
                "--no-legend",
                "--state=active,activating,reloading",
                f"{UNIT_PREFIX}*.service",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        units = [line.split()[0] for line in listed.splitlines() if line.strip()]
        return [unit.removeprefix(UNIT_PREFIX).removesuffix(".service") for unit in units]

    def start(self, instance: str) -> None:
        subprocess.run([*self.systemctl, "start", f"{UNIT_PREFIX}{instance}.service"], check=True)

    def stop(self, instance: str) -> None:
        # --no-block: a stopping worker may finish its job for JOBS_SHUTDOWN_GRACE seconds.
        subprocess.run(
            [*self.systemctl, "stop", "--no-block", f"{UNIT_PREFIX}{instance}.service"],
            check=True,
        )


def instances_of(channel: str, active: Iterable[str]) -> list[int]:
    """The copy numbers of the channel's own instances among `active`, in order."""
    copies = []
    for instance in active:
        match = INSTANCE.match(instance)
        if match and match["channel"] == channel:
            copies.append(int(match["copy"]))
    return sorted(copies)


@dataclass(frozen=True)
class Change:
    """One channel's decision of one run, as logged."""

    queue: Queue
    current: int
    target: int
    started: tuple[str, ...]
    stopped: tuple[str, ...]


def autoscale_apply(
    *, channels: Iterable[str], policy: Policy, units: Units, dry_run: bool = False
) -> list[Change]:
    """Measure, decide and start or stop instances for each channel; one log line each."""
    queues = queues_measure(channels)
    active = units.active()
    changes = []
    for channel, queue in queues.items():
        copies = instances_of(channel, active)
        target = instances_target(queue, current=len(copies), policy=policy)
        # New copies take the lowest free numbers; the highest go first.
        free = (n for n in range(1, len(copies) + target + 1) if n not in copies)
        started = tuple(f"{channel}-{next(free)}" for _ in range(target - len(copies)))
        stopped = tuple(f"{channel}-{n}" for n in reversed(copies[target:]))
        if not dry_run:
            for instance in started:
                units.start(instance)
            for instance in stopped:
                units.stop(instance)
        change = Change(queue, len(copies), target, started, stopped)
        changes.append(change)
        logger.info(
            "autoscale channel=%s ready=%d running=%d oldest_ready_age=%s last_start_age=%s "
            "instances=%d target=%d started=%s stopped=%s%s",
            channel,
            queue.ready,
            queue.running,
            _seconds(queue.oldest_ready_age),
            _seconds(queue.last_start_age),
            len(copies),
            target,
            ",".join(started) or "-",
            ",".join(stopped) or "-",
            " dry-run" if dry_run else "",
        )
    return changes


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"

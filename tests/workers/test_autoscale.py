"""workers/autoscale.py: the autoscaler's decision from a queue's state, the queue's state
measured on real job rows, and a pass that starts and stops instances through its `Units`.
(`Systemctl`, the real `Units`, runs under systemd in tests/cluster/.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from workers.autoscale import (
    Policy,
    Queue,
    autoscale_apply,
    instances_of,
    instances_target,
    queues_measure,
)
from workers.enqueue import job_create
from workers.models import Job, PausedChannel

POLICY = Policy(
    min_instances=1,
    max_instances=4,
    scale_up_age=5,
    ready_per_instance=10,
    scale_down_idle=60,
    step=2,
)


def queue(
    ready: int = 0, running: int = 0, oldest: float | None = None, last_start: float | None = None
) -> Queue:
    return Queue("thumbnails", ready, running, oldest, last_start)


@pytest.mark.parametrize(
    ("state", "current", "target"),
    [
        # A burst: by count, at most `step` more a run, never past the maximum.
        (queue(ready=25, oldest=1), 1, 3),
        (queue(ready=200, oldest=1), 1, 3),
        (queue(ready=200, oldest=1), 3, 4),
        (queue(ready=200, oldest=100), 4, 4),
        # Few jobs, but one has waited too long: one more.
        (queue(ready=2, oldest=6), 1, 2),
        # Few jobs, none waiting long: hold (the band between adding and removing).
        (queue(ready=2, oldest=1, running=1, last_start=0), 2, 2),
        # Nothing ready: remove one, but only once nothing has started for a while...
        (queue(running=0, last_start=61), 3, 2),
        (queue(running=0, last_start=30), 3, 3),
        # ...and while fewer jobs run than there are instances (a stop would hand one back).
        (queue(running=3, last_start=61), 3, 3),
        # Never below the minimum; a host below it is brought up to it.
        (queue(last_start=600), 1, 1),
        (queue(), 0, 1),
    ],
)
def test_the_target_follows_the_queue_with_hysteresis(
    state: Queue, current: int, target: int
) -> None:
    assert instances_target(state, current=current, policy=POLICY) == target


def test_a_burst_then_silence_goes_up_to_the_maximum_and_back_down_one_at_a_time() -> None:
    current = 1
    seen = []
    for state in [queue(ready=100, oldest=0.5)] * 3 + [queue(last_start=120)] * 4:
        current = instances_target(state, current=current, policy=POLICY)
        seen.append(current)
    assert seen == [3, 4, 4, 3, 2, 1, 1]


def test_bounds_that_cannot_hold_are_refused() -> None:
    with pytest.raises(ValueError, match="AUTOSCALE_MIN_INSTANCES"):
        Policy.from_settings(
            {
                "MIN_INSTANCES": 3,
                "MAX_INSTANCES": 2,
                "SCALE_UP_AGE": 5,
                "READY_PER_INSTANCE": 10,
                "SCALE_DOWN_IDLE": 60,
                "STEP": 1,
            }
        )


def job(channel: str, **fields: object) -> Job:
    created = job_create(
        task_path="tests.tasks.trivial",
        channel=channel,
        args=[],
        kwargs={},
        max_attempts=1,
        time_limit=10,
    )
    if fields:
        Job.objects.filter(pk=created.pk).update(**fields)
    return created


@pytest.mark.django_db(transaction=True)
def test_the_queue_is_measured_from_the_job_rows() -> None:
    now = timezone.now()
    for age in (90, 30, 1):
        job("thumbnails", run_after=now - timedelta(seconds=age))
    job("thumbnails", run_after=now + timedelta(hours=1))  # deferred: not ready
    job("thumbnails", status="running", last_attempted_at=now - timedelta(seconds=4))
    job("thumbnails", status="succeeded", last_attempted_at=now - timedelta(seconds=50))
    job("compute", status="succeeded", last_attempted_at=now - timedelta(seconds=200))

    queues = queues_measure(["thumbnails", "compute", "chat-messages"], now=now)
    thumbnails = queues["thumbnails"]
    assert (thumbnails.ready, thumbnails.running) == (3, 1)
    assert thumbnails.oldest_ready_age == pytest.approx(90, abs=1)
    assert thumbnails.last_start_age == pytest.approx(4, abs=1)
    assert queues["compute"] == Queue("compute", 0, 0, None, pytest.approx(200, abs=1))
    assert queues["chat-messages"] == Queue("chat-messages", 0, 0, None, None)

    # Paused, its jobs wait for the operator: nothing to add workers for.
    PausedChannel.objects.create(name="thumbnails")
    assert queues_measure(["thumbnails"], now=now)["thumbnails"].ready == 0


class FakeUnits:
    """Units as a list: what the pass asked systemd for (systemd itself: tests/cluster)."""

    def __init__(self, *instances: str) -> None:
        self.instances = list(instances)
        self.calls: list[tuple[str, str]] = []

    def active(self) -> list[str]:
        return list(self.instances)

    def start(self, instance: str) -> None:
        self.calls.append(("start", instance))
        self.instances.append(instance)

    def stop(self, instance: str) -> None:
        self.calls.append(("stop", instance))
        self.instances.remove(instance)


@pytest.mark.django_db(transaction=True)
def test_a_pass_starts_instances_for_a_burst_and_stops_them_when_idle() -> None:
    # thumbnails-2 was stopped by hand; a several-channel instance is not the autoscaler's.
    units = FakeUnits("thumbnails-1", "thumbnails-3", "compute_thumbnails-1", "compute-1")
    now = timezone.now()
    burst = [job("thumbnails", run_after=now - timedelta(seconds=1)) for _ in range(35)]

    (change,) = autoscale_apply(channels=["thumbnails"], policy=POLICY, units=units)
    assert (change.current, change.target) == (2, 4)
    # The lowest free copy numbers.
    assert units.calls == [("start", "thumbnails-2"), ("start", "thumbnails-4")]

    # The burst is done, long enough ago.
    Job.objects.filter(pk__in=[j.pk for j in burst]).update(
        status="succeeded", last_attempted_at=now - timedelta(seconds=120)
    )
    units.calls.clear()
    autoscale_apply(channels=["thumbnails"], policy=POLICY, units=units)
    autoscale_apply(channels=["thumbnails"], policy=POLICY, units=units)
    # Highest first, one a run.
    assert units.calls == [("stop", "thumbnails-4"), ("stop", "thumbnails-3")]
    assert instances_of("thumbnails", units.active()) == [1, 2]
    assert "compute_thumbnails-1" in units.active()

    # A dry run decides but changes nothing.
    units.calls.clear()
    (change,) = autoscale_apply(channels=["thumbnails"], policy=POLICY, units=units, dry_run=True)
    assert change.stopped == ("thumbnails-2",)
    assert units.calls == []


def test_the_command_refuses_a_channel_that_is_not_named() -> None:
    with pytest.raises(CommandError, match="no channel 'nope'"):
        call_command("autoscale", "nope")

"""The durable job record: the truth about every job lives here, not in the channel layer.

Each state change of a job is written once, here: a claim, a heartbeat, progress, a success,
a failure (with its retry), a hand-back, a recovery, a cancel and an operator's retry. Those a
worker makes are conditional on the worker still owning the job, those of operators and the
recovery sweep on the status the caller saw, so that two writers never overwrite each other.

The three statements every job runs through (its insert, the claim of its batch, the record
of its batch's successes) are the hot path of the runtime: they run on a server-binding cursor
on PostgreSQL, so that psycopg prepares them (workers/sql.py), and each batch takes one
statement. They use the same definitions of the changes as the one-job methods beside them.

Beside the jobs: the channels operators paused, the recurring schedules' last due times, the
workers alive, and leases (named locks with an expiry).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, connections, models, transaction
from django.db.models import Exists, F, ForeignObjectRel, Max, Min, Q, Value
from django.db.models.functions import Coalesce
from django.db.models.sql import UpdateQuery
from django.utils import timezone
from django.utils.module_loading import import_string

from workers.sql import NOW, JSONAppend, Reused, SkipLocked, insert_statement, prepared_cursor


class JobQuerySet(models.QuerySet["Job"]):
    def ready(self, channel: str | None = None, *, now: datetime | None = None) -> JobQuerySet:
        """Queued jobs whose time has come (by `now`), in the order they should run: by
        priority, then fairly between owners (their fair rank), then by age."""
        jobs = self.filter(status=Job.Status.QUEUED, run_after__lte=now or timezone.now())
        if channel is not None:
            jobs = jobs.filter(channel=channel)
        return jobs.order_by("-priority", "fair_rank", "id")

    def claimable(self, channel: str, *, limited: bool, now: datetime | None = None) -> JobQuerySet:
        """Ready jobs of `channel` a worker may take unless it is paused: those with no limit
        (`limited=False`, the fast claim) or those with one (checked one key at a time)."""
        paused = PausedChannel.objects.filter(name=channel)
        jobs = self.ready(channel, now=now).filter(~Exists(paused))
        return jobs.exclude(limit_key="") if limited else jobs.filter(limit_key="")

    def stale(self, *, silent_for: float) -> JobQuerySet:
        """Running jobs whose worker has not sent a heartbeat for `silent_for` seconds."""
        cutoff = timezone.now() - timedelta(seconds=silent_for)
        return self.filter(status=Job.Status.RUNNING, heartbeat_at__lt=cutoff)

    def not_woken(self, *, waiting_for: float) -> JobQuerySet:
        """Ready jobs with no wake-up sent since they became ready, or none for a while."""
        cutoff = timezone.now() - timedelta(seconds=waiting_for)
        return self.ready().filter(
            Q(woken_at__isnull=True) | Q(woken_at__lt=cutoff) | Q(woken_at__lt=F("run_after"))
        )

    def unfinished(self) -> JobQuerySet:
        return self.filter(status__in=Job.UNFINISHED)

    def owned_by(self, user_id: int) -> JobQuerySet:
        return self.filter(owner_id=user_id)

    def disposable(self, *, finished_before: datetime) -> JobQuerySet:
        """Jobs finished before `finished_before` that no other row points to (an upload's
        status is its jobs': those stay as long as it does)."""
        jobs = self.filter(status__in=Job.FINISHED, finished_at__lt=finished_before)
        for relation in Job._meta.get_fields(include_hidden=True):
            if isinstance(relation, ForeignObjectRel):  # a foreign key to Job, on any model
                column = relation.field.attname
                pointing = relation.related_model._default_manager.filter(
                    **{f"{column}__isnull": False}
                )
                jobs = jobs.exclude(pk__in=pointing.values(column))
        return jobs

    # The hot path: a job's insert, its batch's claim and its batch's recorded successes.

    def insert(self, **values: Any) -> Job:
        """Job.objects.create(**values) for the enqueue path, its fair rank worked out in
        the same statement; on PostgreSQL at a third of create()'s cost: the statement is
        worked out once per process from the model's fields, with the constant defaults of
        the fields not given written into it."""
        job, _ = self._insert_job(values, unique=False)
        return job

    def insert_unique(self, **values: Any) -> tuple[Job, bool]:
        """insert(), unless an unfinished job has the same `unique_key`: then that job, and
        False."""
        for _ in range(3):
            job, created = self._insert_job(values, unique=True)
            if created:
                return job, True
            existing = self.unfinished().filter(unique_key=values["unique_key"]).first()
            if existing is not None:
                return existing, False
            # It finished between the two statements: try again.
        raise IntegrityError(f"unique job {values['unique_key']!r} kept changing")

    def _insert_job(self, values: dict[str, Any], *, unique: bool) -> tuple[Job, bool]:
        job = Job(**values)
        wrapper = connections[self.db]
        if wrapper.vendor != "postgresql":
            return self._insert_elsewhere(job, unique=unique)
        sql, params = insert_statement(
            Job, frozenset(values), owner_null=job.owner_id is None, unique=unique
        )
        with prepared_cursor() as cursor:
            cursor.execute(sql, [param(job, wrapper) for param in params])
            row = cursor.fetchone()
        if row is None:
            return job, False
        (job.pk,) = row
        job._state.adding = False
        job._state.db = self.db
        return job, True

    def _insert_elsewhere(self, job: Job, *, unique: bool) -> tuple[Job, bool]:
        """insert() on SQLite: the fair rank and the row in one transaction (IMMEDIATE:
        enqueues take turns)."""
        with transaction.atomic(using=self.db):
            if unique and self.unfinished().filter(unique_key=job.unique_key).exists():
                return job, False
            job.fair_rank = self.fair_rank(channel=job.channel, owner_id=job.owner_id)
            job.save(force_insert=True, using=self.db)
        return job, True

    def fair_rank(self, *, channel: str, owner_id: int | None) -> int:
        """What workers/sql.py's fair_rank_sql says, as two queries."""
        last = (
            self.filter(channel=channel, owner_id=owner_id)
            .filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING])
            .aggregate(rank=Max("fair_rank"))["rank"]
        )
        clock = self.filter(channel=channel, status=Job.Status.QUEUED).aggregate(
            rank=Min("fair_rank")
        )["rank"]
        return max(0 if last is None else last + 1, clock or 0)

    def claim(self, *, channel: str, worker_id: str, size: int) -> list[Job]:
        """Take up to `size` ready jobs of `channel` with no limit for this worker, in the
        order to run them, in one statement (`Job.claim_changes`); none while the channel is
        paused.

        Rows locked by another worker's claim are skipped, so two workers never take the same
        job; on SQLite the IMMEDIATE transaction serialises claims instead. The statement is
        compiled once per channel, worker and size (`claim_statement`).
        """
        statement = claim_statement(self.db, channel=channel, worker_id=worker_id, size=size)
        claimed = self.returned_jobs(statement.sql, statement.params(timezone.now()))
        # RETURNING gives no order.
        return sorted(claimed, key=lambda job: (-job.priority, job.fair_rank, job.pk))

    def claim_limited(self, *, channel: str, worker_id: str, size: int) -> list[Job]:
        """Take up to `size` ready jobs of `channel` that have a limit (concurrency or rate
        per key), as many of each key as its limit allows now. One key at a time, under a
        lock of that key (PostgreSQL's advisory lock; SQLite's transactions take turns), so
        that two workers never both take the last place of a key."""
        statement = limited_candidates_statement(self.db, channel=channel, size=size)
        with prepared_cursor() as cursor:
            cursor.execute(statement.sql, statement.params(timezone.now()))
            candidates: list[tuple[int, str]] = cursor.fetchall()
        keys: dict[str, list[int]] = {}
        for pk, key in candidates:
            keys.setdefault(key, []).append(pk)
        claimed: list[Job] = []
        for key, ids in keys.items():
            if len(claimed) >= size:
                break
            with transaction.atomic(using=self.db):
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])
                first = self.filter(pk=ids[0]).values("concurrency", "rate_limit", "rate_period")
                limits = first.first()
                if limits is None:
                    continue
                room = self.limit_room(key=key, **limits)
                take = ids[: max(0, min(room, size - len(claimed)))]
                if take:
                    claimed += self.filter(pk__in=take, status=Job.Status.QUEUED).update_returning(
                        **Job.claim_changes(worker_id)
                    )
        return sorted(claimed, key=lambda job: (-job.priority, job.fair_rank, job.pk))

    def limit_room(self, *, key: str, concurrency: int, rate_limit: int, rate_period: float) -> int:
        """How many more jobs of `key` may start now: below `concurrency` running ones, and
        below `rate_limit` started in the last `rate_period` seconds (0: no such limit)."""
        room = 1 << 30
        mine = self.filter(limit_key=key)
        if concurrency:
            room = min(room, concurrency - mine.filter(status=Job.Status.RUNNING).count())
        if rate_limit:
            since = timezone.now() - timedelta(seconds=rate_period)
            room = min(room, rate_limit - mine.filter(last_attempted_at__gte=since).count())
        return room

    def update_returning(self, **changes: Any) -> list[Job]:
        """update(**changes), in one statement that returns the changed jobs whole."""
        return self.returned_jobs(*self.update_returning_sql(**changes))

    def update_returning_sql(self, **changes: Any) -> tuple[str, list[Any]]:
        """The statement of update_returning(), compiled."""
        query: Any = self.query.chain(UpdateQuery)
        query.add_update_values(changes)
        compiler = query.get_compiler(self.db)
        compiler.returning_fields = Job._meta.concrete_fields
        sql, params = compiler.as_sql()
        return sql, list(params)

    def returned_jobs(self, sql: str, params: Sequence[Any]) -> list[Job]:
        """Run a statement that returns whole jobs (update_returning_sql()'s), as jobs."""
        with prepared_cursor() as cursor:
            cursor.execute(sql, params)
            rows: Any = cursor.fetchall()
        # What Django's own update-returning does, for a cursor of ours.
        fields = Job._meta.concrete_fields
        compiler = self.query.get_compiler(self.db)
        converters = compiler.get_converters(
            [field.get_col(Job._meta.db_table) for field in fields]
        )
        if converters:
            rows = compiler.apply_converters(rows, converters)
        names = [field.attname for field in fields]
        return [Job.from_db(self.db, names, list(row)) for row in rows]

    def record_successes(self, outcomes: Sequence[tuple[Job, Any]]) -> list[Job]:
        """Record the results of jobs one worker ran (`Job.success_changes`), each with its
        own times; the jobs recorded are returned (one cancelled or given to another worker
        meanwhile is not)."""
        if connection.vendor != "postgresql":
            with transaction.atomic():
                return [job for job, result in outcomes if job.set_succeeded(result)]
        worker_id = outcomes[0][0].worker_id
        assert all(job.worker_id == worker_id for job, _ in outcomes), "one worker's jobs"
        fields = Job.success_changes()
        fields["updated_at"] = now = timezone.now()
        for job, _ in outcomes:
            job.finished_at = job.finished_at or now
        table = Job._meta.db_table
        assignments = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in fields)
        # set_succeeded() for a whole batch: the results and times differ per job, which
        # Django's update() cannot say in one statement.
        with prepared_cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table} AS job SET {assignments}, result = outcome.result::jsonb,
                    started_at = outcome.started_at,
                    last_attempted_at = outcome.last_attempted_at,
                    finished_at = outcome.finished_at
                FROM unnest(
                    %s::bigint[], %s::text[], %s::timestamptz[], %s::timestamptz[],
                    %s::timestamptz[]
                ) AS outcome(id, result, started_at, last_attempted_at, finished_at)
                WHERE job.id = outcome.id AND job.status = %s AND job.worker_id = %s
                RETURNING job.id, job.dependents
                """,  # noqa: S608 (the table and column names are the model's own)
                [
                    *fields.values(),
                    [job.pk for job, _ in outcomes],
                    [None if result is None else json.dumps(result) for _, result in outcomes],
                    [job.started_at for job, _ in outcomes],
                    [job.last_attempted_at for job, _ in outcomes],
                    [job.finished_at for job, _ in outcomes],
                    Job.Status.RUNNING.value,
                    worker_id,
                ],
            )
            recorded = dict(cursor.fetchall())
        jobs = []
        for job, result in outcomes:
            if job.pk in recorded:
                for name, value in fields.items():
                    setattr(job, name, value)
                job.result = result
                dependents = recorded[job.pk]
                job.dependents = (
                    json.loads(dependents) if isinstance(dependents, str) else dependents
                )
                jobs.append(job)
        return jobs

    def hand_back(self, jobs: Sequence[Job]) -> int:
        """Hand claimed jobs back unfinished, as they were before their claim (the attempt
        not counted, the worker not among theirs), where their worker still owns them;
        returns how many were."""
        handed = 0
        with transaction.atomic(using=self.db):
            for job in jobs:
                handed += self.filter(
                    pk=job.pk, status=Job.Status.RUNNING, worker_id=job.worker_id
                ).update(**Job.hand_back_changes(job))
        return handed


# The claim's statements, built once per channel, worker and size: building and compiling
# them through the ORM is most of a claim's cost to the worker.


@functools.lru_cache(maxsize=256)
def claim_statement(db: str, *, channel: str, worker_id: str, size: int) -> Reused:
    """JobQuerySet.claim()'s UPDATE ... RETURNING, compiled."""
    jobs = Job.objects.using(db)
    next_ids = jobs.claimable(channel, limited=False, now=NOW).values("pk")[:size]
    sql, params = jobs.filter(pk__in=SkipLocked(next_ids)).update_returning_sql(
        **Job.claim_changes(worker_id, now=NOW)
    )
    return Reused.of(sql, params, connections[db])


@functools.lru_cache(maxsize=256)
def limited_candidates_statement(db: str, *, channel: str, size: int) -> Reused:
    """JobQuerySet.claim_limited()'s candidates (id, limit key), compiled."""
    candidates = Job.objects.using(db).claimable(channel, limited=True, now=NOW)
    query = candidates.values_list("pk", "limit_key")[: size * 4].query
    sql, params = query.get_compiler(db).as_sql()
    return Reused.of(sql, params, connections[db])


@functools.cache
def _is_for_users(error_class: str) -> bool:
    """Whether an error of this class (a dotted path) carries a message meant for users."""
    from workers.exceptions import JobError

    try:
        found = import_string(error_class)
    except ImportError:
        return False
    return isinstance(found, type) and issubclass(found, JobError)


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        # Enqueued to run after other jobs (`after=`), which have not all succeeded yet.
        WAITING = "waiting"

    FINISHED = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})
    UNFINISHED = (Status.WAITING, Status.QUEUED, Status.RUNNING)

    task_path = models.CharField(max_length=255)
    # What `.using()` changed from the task as declared (priority, queue_name, run_after,
    # backend, max_attempts, time_limit): the task a result reports is the one enqueued.
    task_options = models.JSONField(default=dict, blank=True)
    channel = models.CharField(max_length=100)
    priority = models.SmallIntegerField(default=0)
    # Fair scheduling between owners: a job's place among the channel's jobs of its
    # priority, one past its owner's previous unfinished job (workers/sql.py).
    fair_rank = models.BigIntegerField(default=0)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="jobs",
    )
    # Small JSON facts of the app that enqueued the job; every event of the job carries them
    # (e.g. {"upload": 12}).
    meta = models.JSONField(default=dict, blank=True)
    # A unique task's key: no two unfinished jobs share one.
    unique_key = models.CharField(max_length=255, blank=True)
    # A limited task's key, and its limits (0: none): at most `concurrency` running, at
    # most `rate_limit` started per `rate_period` seconds, over the jobs of that key.
    limit_key = models.CharField(max_length=255, blank=True)
    concurrency = models.PositiveIntegerField(default=0)
    rate_limit = models.PositiveIntegerField(default=0)
    rate_period = models.FloatField(default=0)
    # Chains: the jobs this one waits for (it runs once they all succeeded), and the jobs
    # that wait for this one.
    after = models.JSONField(default=list, blank=True)
    dependents = models.JSONField(default=list, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    progress_message = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    time_limit = models.FloatField(help_text="Seconds one attempt may run.")

    run_after = models.DateTimeField(default=timezone.now, help_text="Earliest run time.")
    enqueued_at = models.DateTimeField(default=timezone.now)
    woken_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last wake-up for this job was sent."
    )
    started_at = models.DateTimeField(null=True, blank=True, help_text="The first attempt's start.")
    last_attempted_at = models.DateTimeField(
        null=True, blank=True, help_text="The last attempt's start."
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    worker_id = models.CharField(max_length=100, blank=True)
    worker_ids = models.JSONField(default=list, blank=True)
    result = models.JSONField(null=True, blank=True)
    # The last failure, until a success; `errors` keeps one entry per failed attempt.
    error = models.TextField(blank=True)
    error_class = models.CharField(max_length=255, blank=True)
    traceback = models.TextField(blank=True)
    errors = models.JSONField(default=list, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        indexes = [
            # The claim: the next queued job of a channel, by priority then fair rank; the
            # jobs with a limit apart, claimed one key at a time.
            models.Index(
                fields=["channel", "-priority", "fair_rank", "id"],
                condition=Q(status="queued", limit_key=""),
                name="job_claim",
            ),
            models.Index(
                fields=["channel", "-priority", "fair_rank", "id"],
                condition=Q(status="queued") & ~Q(limit_key=""),
                name="job_claim_limited",
            ),
            # A channel's clock: its first queued job's rank (see fair_rank).
            models.Index(
                fields=["channel", "fair_rank"], condition=Q(status="queued"), name="job_clock"
            ),
            # Partial, like the claim's: a job's row changes status three times, and an index
            # whose condition the new row does not meet costs that update nothing.
            models.Index(
                fields=["heartbeat_at"], condition=Q(status="running"), name="job_running"
            ),
            # An owner's unfinished jobs, and their last rank per channel.
            models.Index(
                fields=["owner", "channel", "fair_rank"],
                condition=Q(status__in=["waiting", "queued", "running"]),
                name="job_owner_unfinished",
            ),
            # Limits: a key's running jobs, and its recent starts.
            models.Index(
                fields=["limit_key"],
                condition=Q(status="running") & ~Q(limit_key=""),
                name="job_limit_running",
            ),
            models.Index(
                fields=["limit_key", "last_attempted_at"],
                condition=~Q(limit_key=""),
                name="job_limit_started",
            ),
            # Throughput over the last minutes, and the pruning of old jobs.
            models.Index(
                fields=["finished_at"],
                condition=Q(finished_at__isnull=False),
                name="job_finished",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=Q(status__in=["waiting", "queued", "running"]) & ~Q(unique_key=""),
                name="job_unique_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} {self.task_path} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def reason(self) -> str:
        """Why the job failed, as its owner may read it: the message of the runtime's own
        errors (PermanentFailure and its kind are written for users), a plain sentence for
        anything unexpected. `error` and `traceback` keep the detail for operators."""
        if not self.error or _is_for_users(self.error_class):
            return self.error
        return (
            f"processing failed because of an unexpected error (job {self.pk}, "
            f"{self.attempts} attempt{'s' if self.attempts != 1 else ''})"
        )

    # State changes a worker makes: conditional on the worker still owning the job, since a
    # worker taken for dead must not overwrite what its successor recorded.

    @classmethod
    def claim_changes(cls, worker_id: str, *, now: datetime | None = None) -> dict[str, Any]:
        """What claiming a queued job writes (JobQuerySet.claim, for a batch, and claim()).
        The times are the claim's (`now`); the attempt's own start replaces them when it is
        recorded."""
        now = now or timezone.now()
        return {
            "status": cls.Status.RUNNING,
            "attempts": F("attempts") + 1,
            "worker_id": worker_id,
            "worker_ids": JSONAppend("worker_ids", Value(worker_id)),
            "started_at": Coalesce(F("started_at"), Value(now)),
            "last_attempted_at": now,
            "heartbeat_at": now,
            "updated_at": now,
        }

    def claim(self, worker_id: str) -> bool:
        """Claim this job if it is still queued (claims of the runtime come in batches)."""
        claimed = Job.objects.filter(pk=self.pk, status=self.Status.QUEUED).update_returning(
            **self.claim_changes(worker_id)
        )
        for job in claimed:
            self.copy_from(job)
        return bool(claimed)

    def copy_from(self, job: Job) -> None:
        for field in Job._meta.concrete_fields:
            setattr(self, field.attname, getattr(job, field.attname))

    def start_attempt(self) -> None:
        """The attempt starts now (in memory: written with its outcome). The first attempt's
        start is the job's `started_at`."""
        now = timezone.now()
        self.last_attempted_at = now
        if self.attempts <= 1 or self.started_at is None:
            self.started_at = now

    def _update_if_mine(self, **fields: Any) -> bool:
        """Write `fields` if this worker still runs the job; mirror them on self if so."""
        fields["updated_at"] = timezone.now()
        changed = Job.objects.filter(
            pk=self.pk, status=self.Status.RUNNING, worker_id=self.worker_id
        ).update(**fields)
        if changed:
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(changed)

    def heartbeat(self) -> bool:
        """Record that the worker is alive; False if the job is no longer this worker's."""
        return self._update_if_mine(heartbeat_at=timezone.now())

    def set_progress(self, percent: int, message: str) -> bool:
        return self._update_if_mine(
            progress=max(0, min(100, percent)),
            progress_message=message[:255],
            heartbeat_at=timezone.now(),
        )

    @classmethod
    def success_changes(cls) -> dict[str, Any]:
        """What recording a success writes, besides its result and the attempt's times
        (set_succeeded() for one job, JobQuerySet.record_successes for a batch)."""
        return {
            "status": cls.Status.SUCCEEDED,
            "progress": 100,
            "error": "",
            "error_class": "",
            "traceback": "",
        }

    def set_succeeded(self, result: Any) -> bool:
        if self.finished_at is None:
            self.finished_at = timezone.now()
        return self._update_if_mine(
            result=result,
            started_at=self.started_at,
            last_attempted_at=self.last_attempted_at,
            finished_at=self.finished_at,
            **self.success_changes(),
        )

    def set_failed(
        self, *, error: str, error_class: str = "", traceback: str = "", retry: bool
    ) -> bool:
        """Fail this attempt: queue a retry with backoff if allowed, else fail for good. Each
        failed attempt adds to `errors`."""
        now = timezone.now()
        fields: dict[str, Any] = {
            "error": error,
            "error_class": error_class,
            "traceback": traceback,
            "errors": [*self.errors, self.error_entry(error, error_class, traceback, now)],
            "started_at": self.started_at,
            "last_attempted_at": self.last_attempted_at,
        }
        if retry and self.attempts < self.max_attempts:
            return self._update_if_mine(
                status=self.Status.QUEUED,
                run_after=now + timedelta(seconds=self.retry_delay()),
                woken_at=None,
                worker_id="",
                **fields,
            )
        return self._update_if_mine(status=self.Status.FAILED, finished_at=now, **fields)

    def error_entry(
        self, error: str, error_class: str, traceback: str, at: datetime
    ) -> dict[str, Any]:
        """One entry of `errors`: a failed attempt (Django's TaskError, and when and where)."""
        started = self.last_attempted_at
        return {
            "exception_class_path": error_class,
            "traceback": traceback,
            "error": error,
            "attempt": self.attempts,
            "worker_id": self.worker_id,
            "started_at": started.isoformat() if started else None,
            "failed_at": at.isoformat(),
        }

    @classmethod
    def hand_back_changes(cls, job: Job) -> dict[str, Any]:
        """What handing a claimed job back writes: the job as before its claim."""
        changes: dict[str, Any] = {
            "status": cls.Status.QUEUED,
            "attempts": max(0, job.attempts - 1),
            "worker_ids": job.worker_ids[:-1],
            "progress": 0,
            "progress_message": "",
            "woken_at": None,
            "worker_id": "",
            "updated_at": timezone.now(),
        }
        if job.attempts <= 1:
            # Its first claim: it has not started at all.
            changes.update(started_at=None, last_attempted_at=None)
        return changes

    def hand_back(self) -> bool:
        """Hand the job back unfinished (worker shutting down); the attempt does not count."""
        changed = Job.objects.hand_back([self]) == 1
        if changed:
            self.refresh_from_db()
        return changed

    def retry_delay(self) -> float:
        """Exponential backoff: base ** attempts seconds, capped."""
        options = settings.JOBS
        delay: float = options["RETRY_BACKOFF"] ** self.attempts
        cap: float = options["RETRY_BACKOFF_MAX"]
        return min(delay, cap)

    def mark_woken(self) -> None:
        """Record that a wake-up for this job is being sent."""
        self.woken_at = timezone.now()
        Job.objects.filter(pk=self.pk).update(woken_at=self.woken_at)

    # State changes made by operators, the recovery sweep and chains: conditional on the
    # status the caller saw, so a job that moved on in the meantime is left alone.

    def recover(self, reason: str) -> bool:
        """Requeue a running job whose worker went silent, or fail it if out of attempts;
        the lost attempt counts as failed (JobLost)."""
        jobs = Job.objects.filter(pk=self.pk, status=self.Status.RUNNING, worker_id=self.worker_id)
        now = timezone.now()
        lost = "workers.exceptions.JobLost"
        if self.attempts >= self.max_attempts:
            error = f"{reason}; gave up after {self.attempts} attempts"
            fields: dict[str, Any] = {
                "status": self.Status.FAILED,
                "error": error,
                "error_class": lost,
                "finished_at": now,
            }
        else:
            error = reason
            fields = {
                "status": self.Status.QUEUED,
                "error": reason,
                "run_after": now,
                "woken_at": None,
                "worker_id": "",
            }
        fields["errors"] = [*self.errors, self.error_entry(error, lost, "", now)]
        changed = jobs.update(updated_at=now, **fields)
        if changed:
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(changed)

    def cancel(self) -> bool:
        """Cancel a waiting, queued or running job (a running task is told, and stopped
        after a grace: workers/watchdog.py)."""
        changed = Job.objects.filter(pk=self.pk, status__in=self.UNFINISHED).update(
            status=self.Status.CANCELLED, finished_at=timezone.now(), updated_at=timezone.now()
        )
        if changed:
            self.refresh_from_db()
        return bool(changed)

    def requeue(self) -> bool:
        """Run a failed or cancelled job again from scratch (an operator's retry)."""
        changed = Job.objects.filter(
            pk=self.pk, status__in=[self.Status.FAILED, self.Status.CANCELLED]
        ).update(
            status=self.Status.QUEUED,
            attempts=0,
            progress=0,
            progress_message="",
            run_after=timezone.now(),
            woken_at=None,
            finished_at=None,
            worker_id="",
            error="",
            error_class="",
            traceback="",
            updated_at=timezone.now(),
        )
        if changed:
            self.refresh_from_db()
        return bool(changed)

    def release(self) -> bool:
        """A waiting job whose jobs all succeeded: queue it now (workers/chains.py)."""
        now = timezone.now()
        changed = Job.objects.filter(pk=self.pk, status=self.Status.WAITING).update(
            status=self.Status.QUEUED, run_after=max(self.run_after, now), updated_at=now
        )
        if changed:
            self.refresh_from_db()
        return bool(changed)

    def fail_waiting(self, reason: str) -> bool:
        """A waiting job one of whose jobs failed or was cancelled: it fails unrun."""
        now = timezone.now()
        changed = Job.objects.filter(pk=self.pk, status=self.Status.WAITING).update(
            status=self.Status.FAILED,
            error=reason,
            error_class="workers.exceptions.PermanentFailure",
            finished_at=now,
            updated_at=now,
        )
        if changed:
            self.refresh_from_db()
        return bool(changed)


class PausedChannel(models.Model):
    """A named channel an operator paused: while its row exists, no worker claims its jobs."""

    name = models.CharField(max_length=100, primary_key=True)
    paused_at = models.DateTimeField(default=timezone.now)
    paused_by = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return f"channel {self.name} paused"


class Schedule(models.Model):
    """A recurring job's last due time that was enqueued (workers/schedules.py): the next
    due times follow from it, across restarts."""

    name = models.CharField(max_length=100, primary_key=True)
    last_due_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"schedule {self.name} last due {self.last_due_at:%Y-%m-%d %H:%M}"


class WorkerProcess(models.Model):
    """A worker alive (it touches its row every heartbeat), for the operators' page."""

    worker_id = models.CharField(max_length=100, primary_key=True)
    channels = models.JSONField(default=list)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    # The jobs it runs now, by channel: {"compute": 12}.
    running = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"worker {self.worker_id}"


class Lease(models.Model):
    """A named lock with an expiry, held by one process at a time (e.g. the recovery sweep)."""

    name = models.CharField(max_length=100, primary_key=True)
    holder = models.CharField(max_length=100)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"lease {self.name} held by {self.holder} until {self.expires_at:%H:%M:%S}"

    @classmethod
    def acquire(cls, name: str, *, holder: str, ttl: float) -> bool:
        """Take or renew the lease; False while another holder's lease is still valid."""
        now = timezone.now()
        expires_at: datetime = now + timedelta(seconds=ttl)
        taken = (
            cls.objects.filter(name=name)
            .filter(Q(expires_at__lt=now) | Q(holder=holder))
            .update(holder=holder, expires_at=expires_at)
        )
        if taken:
            return True
        try:
            with transaction.atomic():
                cls.objects.create(name=name, holder=holder, expires_at=expires_at)
        except IntegrityError:
            return False
        return True

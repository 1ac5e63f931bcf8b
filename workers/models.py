"""The durable job record: the truth about every job lives here, not in the channel layer.

Each state change of a job is written once, here: a claim, a heartbeat, progress, a success,
a failure (with its retry), a hand-back, a recovery, a cancel and an operator's retry. Those a
worker makes are conditional on the worker still owning the job, those of operators and the
recovery sweep on the status the caller saw, so that two writers never overwrite each other.

The three statements every job runs through (its insert, the claim of its batch, the record
of its batch's successes) are the hot path of the runtime: they run on a server-binding cursor
on PostgreSQL, so that psycopg prepares them (`prepared_cursor`), and each batch takes one
statement. They use the same definitions of the changes as the one-job methods beside them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, ForeignObjectRel, Func, Q, Subquery, Value
from django.db.models.functions import Greatest
from django.db.models.sql import UpdateQuery
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone
from django.utils.module_loading import import_string


class JSONAppend(Func):
    """A JSON array column with one value appended (PostgreSQL and SQLite)."""

    output_field = models.JSONField()

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        (array, array_params), (value, value_params) = self._compiled(compiler)
        return f"({array} || to_jsonb(({value})::text))", (*array_params, *value_params)

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        (array, array_params), (value, value_params) = self._compiled(compiler)
        return f"json_insert({array}, '$[#]', {value})", (*array_params, *value_params)

    def _compiled(self, compiler: SQLCompiler) -> list[tuple[str, Sequence[Any]]]:
        return [compiler.compile(expression) for expression in self.get_source_expressions()]


class SkipLocked(Subquery):
    """A subquery whose rows are locked FOR UPDATE SKIP LOCKED where the database can: rows
    another transaction holds are passed over. Used inside one UPDATE, whose own implicit
    transaction holds the locks (Django's select_for_update() asks for an explicit one)."""

    def as_sql(  # type: ignore[override]
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        template: str | None = None,
        **extra: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        if connection.features.has_select_for_update_skip_locked:
            template = "(%(subquery)s FOR UPDATE SKIP LOCKED)"
        sql, params = super().as_sql(compiler, connection, template=template, **extra)
        return sql, tuple(params)


class JobQuerySet(models.QuerySet["Job"]):
    def ready(self, channel: str | None = None) -> JobQuerySet:
        """Queued jobs whose time has come, in the order they should run."""
        jobs = self.filter(status=Job.Status.QUEUED, run_after__lte=timezone.now())
        if channel is not None:
            jobs = jobs.filter(channel=channel)
        return jobs.order_by("-priority", "run_after", "id")

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
        return self.filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING])

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
        """Job.objects.create(**values) for the enqueue path, on PostgreSQL at a third of its
        cost: the statement is worked out once per process from the model's fields, with the
        constant defaults of the fields not given written into it."""
        job = Job(**values)
        if connection.vendor != "postgresql":
            job.save(force_insert=True, using=self.db)
            return job
        sql, bound = _insert_statement(frozenset(values))
        params = [field.get_db_prep_save(field.pre_save(job, True), connection) for field in bound]
        with prepared_cursor() as cursor:
            cursor.execute(sql, params)
            (job.pk,) = cursor.fetchone()
        job._state.adding = False
        job._state.db = self.db
        return job

    def claim(self, *, channel: str, worker_id: str, size: int) -> list[Job]:
        """Take up to `size` ready jobs of `channel` for this worker, in the order to run
        them, in one statement (`Job.claim_changes`).

        Rows locked by another worker's claim are skipped, so two workers never take the same
        job; on SQLite the IMMEDIATE transaction serialises claims instead.
        """
        next_ids = self.ready(channel).values("pk")[:size]
        claimed = self.filter(pk__in=SkipLocked(next_ids)).update_returning(
            **Job.claim_changes(worker_id)
        )
        # RETURNING gives no order.
        return sorted(claimed, key=lambda job: (-job.priority, job.run_after, job.pk))

    def update_returning(self, **changes: Any) -> list[Job]:
        """update(**changes), in one statement that returns the changed jobs whole."""
        query: Any = self.query.chain(UpdateQuery)
        query.add_update_values(changes)
        compiler = query.get_compiler(self.db)
        fields = Job._meta.concrete_fields
        compiler.returning_fields = fields
        sql, params = compiler.as_sql()
        with prepared_cursor() as cursor:
            cursor.execute(sql, params)
            rows: Any = cursor.fetchall()
        # What Django's own update-returning does, for a cursor of ours.
        converters = compiler.get_converters(
            [field.get_col(Job._meta.db_table) for field in fields]
        )
        if converters:
            rows = compiler.apply_converters(rows, converters)
        names = [field.attname for field in fields]
        return [Job.from_db(self.db, names, list(row)) for row in rows]

    def record_successes(self, outcomes: Sequence[tuple[Job, Any]]) -> list[Job]:
        """Record the results of jobs one worker ran (`Job.success_changes`); the jobs
        recorded are returned (one cancelled or given to another worker meanwhile is not)."""
        if connection.vendor != "postgresql":
            with transaction.atomic():
                return [job for job, result in outcomes if job.set_succeeded(result)]
        worker_id = outcomes[0][0].worker_id
        assert all(job.worker_id == worker_id for job, _ in outcomes), "one worker's jobs"
        fields = Job.success_changes()
        fields["updated_at"] = fields["finished_at"]
        table = Job._meta.db_table
        assignments = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in fields)
        # set_succeeded() for a whole batch: the results differ per job, which Django's
        # update() cannot say in one statement.
        with prepared_cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table} AS job SET {assignments}, result = outcome.result::jsonb
                FROM unnest(%s::bigint[], %s::text[]) AS outcome(id, result)
                WHERE job.id = outcome.id AND job.status = %s AND job.worker_id = %s
                RETURNING job.id
                """,  # noqa: S608 (the table and column names are the model's own)
                [
                    *fields.values(),
                    [job.pk for job, _ in outcomes],
                    [None if result is None else json.dumps(result) for _, result in outcomes],
                    Job.Status.RUNNING.value,
                    worker_id,
                ],
            )
            recorded = {pk for (pk,) in cursor.fetchall()}
        jobs = []
        for job, result in outcomes:
            if job.pk in recorded:
                for name, value in fields.items():
                    setattr(job, name, value)
                job.result = result
                jobs.append(job)
        return jobs

    def hand_back(self, jobs: Sequence[Job]) -> int:
        """Hand claimed jobs back unfinished, the attempt not counted, where their worker
        still owns them; returns how many were."""
        if not jobs:
            return 0
        return self.filter(
            pk__in=[job.pk for job in jobs],
            status=Job.Status.RUNNING,
            worker_id__in={job.worker_id for job in jobs},
        ).update(
            status=Job.Status.QUEUED,
            attempts=Greatest(F("attempts") - 1, 0),
            progress=0,
            progress_message="",
            woken_at=None,
            worker_id="",
            updated_at=timezone.now(),
        )


def prepared_cursor() -> Any:
    """A cursor for the runtime's per-job statements on PostgreSQL (enqueue, claim, record):
    it binds parameters server-side, so psycopg prepares a statement after a few runs (the
    connection's prepare_threshold, see settings) and PostgreSQL parses it once per
    connection. Django's own cursors bind client-side: server-side binding caps a statement
    at 65,535 parameters, which Django's delete of that many jobs exceeds. Elsewhere, the
    connection's usual cursor."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    # What connection.cursor() does, with the other cursor class.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    # (django-stubs types Django's cursor classes as taking no arguments.)
    cursor: Any = ServerBindingCursor(connection.connection)  # type: ignore[call-arg]
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)


@functools.cache
def _is_for_users(error_class: str) -> bool:
    """Whether an error of this class (a dotted path) carries a message meant for users."""
    from workers.exceptions import JobError

    try:
        found = import_string(error_class)
    except ImportError:
        return False
    return isinstance(found, type) and issubclass(found, JobError)


@functools.cache
def _insert_statement(given: frozenset[str]) -> tuple[str, list[models.Field[Any, Any]]]:
    """The INSERT for a job with the fields `given`, and the fields its parameters are for."""
    quote = connection.ops.quote_name
    columns, placeholders, bound = [], [], []
    for field in Job._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(quote(field.attname))
        constant = not (field.has_default() and callable(field.default)) and not getattr(
            field, "auto_now", False
        )
        if field.name in given or field.attname in given or not constant:
            placeholders.append("%s")
            bound.append(field)
        else:
            default = field.get_db_prep_save(field.get_default(), connection)
            # PostgreSQL's operations quote a literal (psycopg's own quoting).
            placeholders.append(connection.ops.compose_sql("%s", [default]))  # type: ignore[attr-defined]
    sql = (
        f"INSERT INTO {quote(Job._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608 (the model's own names)
        f"VALUES ({', '.join(placeholders)}) RETURNING {quote(Job._meta.pk.attname)}"
    )
    return sql, bound


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})

    task_path = models.CharField(max_length=255)
    channel = models.CharField(max_length=100)
    priority = models.SmallIntegerField(default=0)
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
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    worker_id = models.CharField(max_length=100, blank=True)
    worker_ids = models.JSONField(default=list, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_class = models.CharField(max_length=255, blank=True)
    traceback = models.TextField(blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        indexes = [
            # The claim: the next queued job of a channel, by priority then age.
            models.Index(
                fields=["channel", "-priority", "run_after", "id"],
                condition=Q(status="queued"),
                name="job_claim",
            ),
            # Partial, like the claim's: a job's row changes status three times, and an index
            # whose condition the new row does not meet costs that update nothing.
            models.Index(
                fields=["heartbeat_at"], condition=Q(status="running"), name="job_running"
            ),
            models.Index(
                fields=["owner"],
                condition=Q(status__in=["queued", "running"]),
                name="job_owner_unfinished",
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
    def claim_changes(cls, worker_id: str) -> dict[str, Any]:
        """What claiming a queued job writes (JobQuerySet.claim, for a batch, and claim())."""
        now = timezone.now()
        return {
            "status": cls.Status.RUNNING,
            "attempts": F("attempts") + 1,
            "worker_id": worker_id,
            "worker_ids": JSONAppend("worker_ids", Value(worker_id)),
            "started_at": now,
            "heartbeat_at": now,
            "updated_at": now,
        }

    def claim(self, worker_id: str) -> bool:
        """Claim this job if it is still queued (claims of the runtime come in batches)."""
        claimed = Job.objects.filter(pk=self.pk, status=self.Status.QUEUED).update_returning(
            **self.claim_changes(worker_id)
        )
        for job in claimed:
            for field in Job._meta.concrete_fields:
                setattr(self, field.attname, getattr(job, field.attname))
        return bool(claimed)

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
        """What recording a success writes, besides its result (set_succeeded() for one job,
        JobQuerySet.record_successes for a batch)."""
        return {
            "status": cls.Status.SUCCEEDED,
            "progress": 100,
            "error": "",
            "error_class": "",
            "traceback": "",
            "finished_at": timezone.now(),
        }

    def set_succeeded(self, result: Any) -> bool:
        return self._update_if_mine(result=result, **self.success_changes())

    def set_failed(
        self, *, error: str, error_class: str = "", traceback: str = "", retry: bool
    ) -> bool:
        """Fail this attempt: queue a retry with backoff if allowed, else fail for good."""
        if retry and self.attempts < self.max_attempts:
            return self._update_if_mine(
                status=self.Status.QUEUED,
                run_after=timezone.now() + timedelta(seconds=self.retry_delay()),
                woken_at=None,
                error=error,
                error_class=error_class,
                traceback=traceback,
                worker_id="",
            )
        return self._update_if_mine(
            status=self.Status.FAILED,
            error=error,
            error_class=error_class,
            traceback=traceback,
            finished_at=timezone.now(),
        )

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
        return min(delay, options["RETRY_BACKOFF_MAX"])

    def mark_woken(self) -> None:
        """Record that a wake-up for this job is being sent."""
        self.woken_at = timezone.now()
        Job.objects.filter(pk=self.pk).update(woken_at=self.woken_at)

    # State changes made by operators and the recovery sweep: conditional on the status the
    # caller saw, so a job that moved on in the meantime is left alone.

    def recover(self, reason: str) -> bool:
        """Requeue a running job whose worker went silent, or fail it if out of attempts."""
        jobs = Job.objects.filter(pk=self.pk, status=self.Status.RUNNING, worker_id=self.worker_id)
        now = timezone.now()
        if self.attempts >= self.max_attempts:
            fields: dict[str, Any] = {
                "status": self.Status.FAILED,
                "error": f"{reason}; gave up after {self.attempts} attempts",
                "error_class": "workers.exceptions.JobLost",
                "finished_at": now,
            }
        else:
            fields = {
                "status": self.Status.QUEUED,
                "error": reason,
                "run_after": now,
                "woken_at": None,
                "worker_id": "",
            }
        changed = jobs.update(updated_at=now, **fields)
        if changed:
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(changed)

    def cancel(self) -> bool:
        changed = Job.objects.filter(
            pk=self.pk, status__in=[self.Status.QUEUED, self.Status.RUNNING]
        ).update(
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

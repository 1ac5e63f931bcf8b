"""The SQL the job runtime's hot path needs and Django does not say by itself: a JSON array
appended to, a subquery locked FOR UPDATE SKIP LOCKED, the job's INSERT worked out once per
process (with its fair rank computed in the same statement), a statement the ORM compiles once
and that runs again with the time of each run, and a cursor that prepares the per-job
statements on PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Func, Subquery
from django.db.models.sql.compiler import SQLCompiler

if TYPE_CHECKING:
    from workers.models import Job


class JSONAppend(Func):
    """A JSON array column with one string appended (PostgreSQL and SQLite)."""

    output_field = models.JSONField()
    # The SQL type the value is read as, which its JSON type follows.
    cast = "text"

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        (array, array_params), (value, value_params) = self._compiled(compiler)
        return (
            f"({array} || to_jsonb(({value})::{self.cast}))",
            (*array_params, *value_params),
        )

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        (array, array_params), (value, value_params) = self._compiled(compiler)
        return f"json_insert({array}, '$[#]', {value})", (*array_params, *value_params)

    def _compiled(self, compiler: SQLCompiler) -> list[tuple[str, Sequence[Any]]]:
        return [compiler.compile(expression) for expression in self.get_source_expressions()]


class JSONAppendNumber(JSONAppend):
    """A JSON array column with one whole number appended."""

    cast = "bigint"


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


# Stands for the time of the run in a statement compiled once (Reused): each run puts its own
# time where the compiled parameters hold this one. No statement of the runtime has it as a
# real value.
NOW = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Reused:
    """A statement the ORM built and compiled once, to run many times: building and compiling
    the claim's UPDATE cost the worker more CPU than running it (2 ms against 0.1 ms per
    batch, here). Built with NOW for the current time; `params(now)` are a run's."""

    sql: str
    compiled: tuple[Any, ...]
    # Where NOW is among the compiled parameters.
    now_at: tuple[int, ...]

    @classmethod
    def of(cls, sql: str, params: Sequence[Any], connection: BaseDatabaseWrapper) -> Reused:
        marker = connection.ops.adapt_datetimefield_value(NOW)
        now_at = tuple(index for index, param in enumerate(params) if param == marker)
        return cls(sql, tuple(params), now_at)

    def params(self, now: datetime) -> list[Any]:
        params = list(self.compiled)
        value = connection.ops.adapt_datetimefield_value(now)
        for index in self.now_at:
            params[index] = value
        return params


def prepared_cursor() -> Any:
    """A cursor for the runtime's per-job statements on PostgreSQL (enqueue, claim, record):
    it binds parameters server-side, so psycopg prepares a statement after a few runs (the
    connection's prepare_threshold, see settings) and PostgreSQL parses it once per
    connection. Django's own cursors bind client-side: server-side binding caps a statement
    at 65,535 parameters, which Django's delete of that many jobs exceeds. Elsewhere, the
    connection's usual cursor."""
    # The thread's connection itself: each attribute of the `connection` proxy is a look-up
    # of the thread's (asgiref's Local), which the enqueue made twenty times.
    wrapper = connections[DEFAULT_DB_ALIAS]
    if wrapper.vendor != "postgresql":
        return wrapper.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    # What connection.cursor() does, with the other cursor class.
    wrapper.close_if_health_check_failed()
    wrapper.ensure_connection()
    wrapper.validate_thread_sharing()
    # (django-stubs types Django's cursor classes as taking no arguments.)
    cursor: Any = ServerBindingCursor(wrapper.connection)  # type: ignore[call-arg]
    cursor.adapters.register_loader("timestamptz", _timestamptz_loader(wrapper.timezone))
    if wrapper.queries_logged:
        return wrapper.make_debug_cursor(cursor)
    return wrapper.make_cursor(cursor)


@functools.cache
def _timestamptz_loader(timezone: tzinfo | None) -> type:
    """Django's loader of a PostgreSQL timestamptz, parsing with datetime.fromisoformat (C)
    rather than psycopg's Python parser, which Django's loader extends: a claimed job has
    eight times, and parsing them was a fifth of the claim's cost to the worker. What
    fromisoformat does not take (dates BC, a DateStyle other than ISO) goes to Django's
    loader, which reads it or raises as before."""
    from django.db.backends.postgresql.psycopg_any import BaseTzLoader

    class Loader(BaseTzLoader):  # type: ignore[misc, valid-type]
        def load(self, data: Any) -> Any:
            try:
                parsed = datetime.fromisoformat(bytes(data).decode())
            except ValueError:
                return super().load(data)
            # As Django's loader: in the connection's time zone (the session's), or naive.
            if self.timezone is None:
                return parsed.replace(tzinfo=None)
            return parsed.astimezone(self.timezone)

    Loader.timezone = timezone
    return Loader


# What one parameter of the INSERT is, from the job being inserted (and the connection).
Param = Callable[["Job", BaseDatabaseWrapper], Any]


def fair_rank_sql(model: type[Job], *, owner_null: bool) -> tuple[str, list[Param]]:
    """The job's fair rank, as SQL inside its INSERT (see Job.fair_rank): one past the
    owner's last unfinished job of the channel, but no earlier than the channel's first
    queued job (its clock), so an owner who was away does not jump a queue it never waited
    in. Two index probes, in the enqueue's one round trip.

    The owner's last rank is asked for as its newest row (ORDER BY ... DESC LIMIT 1), not as
    max(): PostgreSQL may plan a max() with a filter as an aggregate over every unfinished job
    of the owner (it did here, without fresh statistics), which made each enqueue cost a scan
    of the owner's whole queue; the ordered probe reads one entry of job_owner_unfinished."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    queued, running = (connection.ops.compose_sql("%s", [s]) for s in ("queued", "running"))  # type: ignore[attr-defined]
    owner = "owner_id IS NULL" if owner_null else "owner_id = %s"
    sql = (
        f"GREATEST(COALESCE((SELECT fair_rank + 1 FROM {table} "  # noqa: S608 (the model's own names)
        f"WHERE {owner} AND channel = %s AND status IN ({queued}, {running}) "
        # owner_id in the order too: `IS NULL` does not make it a constant to the planner,
        # and only (owner_id, fair_rank) read backwards is the index's own order.
        "ORDER BY owner_id DESC, fair_rank DESC LIMIT 1), 0), "
        f"COALESCE((SELECT fair_rank FROM {table} "
        f"WHERE channel = %s AND status = {queued} ORDER BY fair_rank LIMIT 1), 0))"
    )
    params: list[Param] = []
    if not owner_null:
        params.append(lambda job, _: job.owner_id)
    params += [lambda job, _: job.channel, lambda job, _: job.channel]
    return sql, params


@functools.cache
def insert_statement(
    model: type[Job], given: frozenset[str], *, owner_null: bool, unique: bool
) -> tuple[str, list[Param]]:
    """The INSERT for a job with the fields `given`, and how to get its parameters from the
    job. Constant defaults of fields not given are written into it; a unique job's insert
    does nothing where an unfinished job has its key (and then returns no row)."""
    quote = connection.ops.quote_name
    columns, placeholders, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(quote(field.attname))
        if field.name == "fair_rank":
            sql, rank_params = fair_rank_sql(model, owner_null=owner_null)
            placeholders.append(sql)
            params.extend(rank_params)
            continue
        # A default made afresh per job is a constant too when it is an empty list or dict
        # (JSONField(default=list)): one JSON parameter fewer for each.
        made_per_job = field.has_default() and callable(field.default)
        constant = (not made_per_job or field.default in (list, dict)) and not getattr(
            field, "auto_now", False
        )
        if field.name in given or field.attname in given or not constant:
            placeholders.append("%s")
            params.append(functools.partial(_prepared_value, field))
        else:
            default = field.get_db_prep_save(field.get_default(), connection)
            # PostgreSQL's operations quote a literal (psycopg's own quoting).
            placeholders.append(connection.ops.compose_sql("%s", [default]))  # type: ignore[attr-defined]
    conflict = ""
    if unique:
        unfinished = ", ".join(
            connection.ops.compose_sql("%s", [status])  # type: ignore[attr-defined]
            for status in model.UNFINISHED
        )
        # The predicate of the partial unique index (Job.Meta), so that PostgreSQL finds it.
        conflict = (
            " ON CONFLICT (unique_key) WHERE status IN ("
            f"{unfinished}) AND NOT (unique_key = '') DO NOTHING"
        )
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608 (the model's own names)
        f"VALUES ({', '.join(placeholders)}){conflict} RETURNING {quote(model._meta.pk.attname)}"
    )
    return sql, params


def _prepared_value(
    field: models.Field[Any, Any], job: Job, connection: BaseDatabaseWrapper
) -> Any:
    return field.get_db_prep_save(field.pre_save(job, True), connection)

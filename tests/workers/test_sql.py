"""The enqueue's INSERT (workers/sql.py): its cost must not grow with the queue it joins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DataError, connection, transaction
from django.utils import timezone

from tests import tasks
from workers.backends import enqueue_for
from workers.models import Job
from workers.sql import insert_statement, prepared_cursor

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

BACKLOG = 300


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def rows_read_by_index_scans(owner: Any) -> list[int]:
    """EXPLAIN ANALYZE of the INSERT a new job of `owner` gets (rolled back): the rows each
    index scan in it read."""
    now = timezone.now()
    values: dict[str, Any] = {
        "task_path": tasks.trivial.module_path,
        "channel": "compute",
        "args": [],
        "kwargs": {},
        "owner": owner,
        "meta": {},
        "max_attempts": 3,
        "time_limit": 10,
        "run_after": now,
        "enqueued_at": now,
        "woken_at": now,
    }
    job = Job(**values)
    sql, params = insert_statement(Job, frozenset(values), owner_null=owner is None, unique=False)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + sql, [param(job, connection) for param in params]
        )
        (document,) = cursor.fetchone()
        transaction.set_rollback(True)
    plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
    return [node["Actual Rows"] for node in plan_nodes(plan) if "Index" in node["Node Type"]]


@pytest.mark.parametrize("with_owner", [True, False], ids=["an owner", "no owner"])
def test_an_enqueue_behind_a_long_queue_of_its_owner_reads_one_row_per_probe(
    user: Any, with_owner: bool
) -> None:
    owner = user if with_owner else None
    with enqueue_for(owner=owner):
        for _ in range(BACKLOG):
            tasks.trivial.enqueue()
    plans = []
    if not with_owner:
        # Without fresh statistics too (a new table, autovacuum not round yet): jobs without
        # an owner read one entry even then. (With an owner PostgreSQL may then take the
        # owner's foreign key index instead, as it did for the max() this replaced.)
        plans.append(rows_read_by_index_scans(owner))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Job._meta.db_table}")
    plans.append(rows_read_by_index_scans(owner))
    for rows in plans:
        # The owner's last rank and the channel's clock: one index entry each, not the
        # owner's whole queue.
        assert rows, "the fair rank is read through the indexes"
        assert max(rows) <= 1, rows


@pytest.mark.parametrize("style", ["ISO, MDY", "ISO, DMY"])
def test_the_runtimes_statements_read_times_as_django_reads_them(style: str) -> None:
    job = Job.objects.get(pk=tasks.trivial.enqueue().id)
    with connection.cursor() as cursor:
        cursor.execute(f"SET DateStyle = '{style}'")
    try:
        with prepared_cursor() as cursor:
            table = Job._meta.db_table
            cursor.execute(
                f"SELECT enqueued_at, run_after FROM {table} WHERE id = %s",  # noqa: S608 (the model's own)
                [job.pk],
            )
            read = cursor.fetchone()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET DateStyle = 'ISO, MDY'")
    assert read == (job.enqueued_at, job.run_after)
    assert [value.tzinfo for value in read] == [job.enqueued_at.tzinfo, job.run_after.tzinfo]


def test_a_time_the_runtimes_statements_cannot_read_fails_as_djangos_cursor_does() -> None:
    # A date BC: Python's datetime has none.
    query = "SELECT '0044-03-15 12:00:00+00 BC'::timestamptz"
    errors = []
    for cursor_of in (connection.cursor, prepared_cursor):
        with cursor_of() as cursor:
            cursor.execute(query)
            with pytest.raises(DataError) as raised:
                cursor.fetchone()
        errors.append(str(raised.value))
    assert errors[0] == errors[1]

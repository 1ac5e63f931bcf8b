"""A request's database connection is closed when the request ends (project/db.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from tests.processes import Processes, login

pytestmark = pytest.mark.postgres


def open_connections() -> int:
    """The connections to the test database, this test's own left out."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def test_page_views_leave_no_connection_open(
    processes: Processes, user: Any, password: str
) -> None:
    # daphne as in production: persistent connections (CONN_MAX_AGE) for the threads that
    # live on; every request of Django's runs on a thread of its own, which does not.
    web = processes.daphne()
    client = login(web.url, user.username, password)
    before = open_connections()
    for _ in range(100):
        # Each reads the session and the user, and the page its rooms.
        assert client.get("/chat/").status_code == 200
        assert client.get("/api/uploads/").status_code == 200
    # Without project/db.py: 26 connections left open here, until the cycle collector ran.
    # A thread that lives on (the default executor's, which runs some of Django's async
    # calls) keeps its one connection, as it should: these requests, one after another,
    # use one or two such threads at most.
    assert open_connections() <= before + 2

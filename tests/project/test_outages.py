"""While the database does not answer (PostgreSQL restarting), requests get 503 with
Retry-After and a readable reason, JSON for the API, not a 500 and never the error's text."""

from __future__ import annotations

import httpx
import pytest

from tests.bench import PRODUCTION_ENV
from tests.processes import Process, Processes, free_port, wait_for

# Nothing listens there: every connection is refused, as while PostgreSQL restarts.
NO_DATABASE = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"


@pytest.fixture
def web(processes: Processes) -> Process:
    return processes.daphne(DATABASE_URL=NO_DATABASE, **PRODUCTION_ENV)


@pytest.fixture
def server(web: Process) -> str:
    return web.url


def test_the_api_answers_503_with_retry_after_while_the_database_is_down(server: str) -> None:
    # A session cookie makes the request read the session from the database.
    response = httpx.get(f"{server}/api/uploads/", cookies={"sessionid": "x" * 32}, timeout=30)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    body = response.json()
    assert body["code"] == "unavailable"
    assert "try again" in body["error"]
    assert "127.0.0.1" not in response.text
    assert "connection" not in response.text.lower()


def test_a_page_answers_503_while_the_database_is_down(server: str) -> None:
    response = httpx.get(f"{server}/chat/", cookies={"sessionid": "x" * 32}, timeout=30)
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert "try again" in response.text


def test_a_bug_is_still_a_500_without_its_detail(processes: Processes) -> None:
    server = processes.daphne(**PRODUCTION_ENV).url
    response = httpx.get(f"{server}/api/test/broken/", timeout=30)
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
    assert response.json()["code"] == "server_error"
    assert "secret" not in response.text


def test_the_log_says_an_outage_once_and_its_end_once(web: Process) -> None:
    for _ in range(4):
        response = httpx.get(f"{web.url}/api/uploads/", cookies={"sessionid": "x" * 32}, timeout=30)
        assert response.status_code == 503
    # A request that needs no database (no session: refused as anonymous) is answered again.
    assert httpx.get(f"{web.url}/api/uploads/", timeout=30).status_code < 500
    wait_for(lambda: "back after" in web.output(), 10, "the outage's end in the log")
    log = web.output()
    assert log.count("requests' database or message broker failing: OperationalError") == 1, log
    # Not a line (a traceback) a request.
    assert "Service Unavailable: /api/uploads/" not in log, log
    back = [line for line in log.splitlines() if "back after" in line]
    assert len(back) == 1, log
    assert back[0].endswith("(4 calls failed)"), log

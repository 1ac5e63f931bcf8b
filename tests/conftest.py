"""Test configuration. `make test` runs the suite twice: on the embedded default (SQLite and
the in-memory layer) and on PostgreSQL + Redis (DATABASE_URL and REDIS_URL set). Tests marked
`redis` or `postgres` belong to the second run only; in that run a service that cannot be
reached is an error, never a skip."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.processes import Processes

REDIS_URL = os.environ.get("REDIS_URL", "")
DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith(("postgres://", "postgresql://"))

# Short delays so that recovery shows within a test's patience.
FAST_JOBS = {
    "JOBS_HEARTBEAT_INTERVAL": "0.5",
    "JOBS_STALE_AFTER": "3",
    "JOBS_REDISPATCH_AFTER": "2",
    "JOBS_SWEEP_INTERVAL": "0.5",
    "JOBS_RETRY_BACKOFF": "1.5",
    "JOBS_SHUTDOWN_GRACE": "15",
    "JOBS_PROGRESS_MIN_INTERVAL": "0",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselected = [
        item
        for item in items
        if (item.get_closest_marker("redis") and not REDIS_URL)
        or (item.get_closest_marker("postgres") and not ON_POSTGRES)
    ]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


@pytest.fixture(scope="session", autouse=True)
def _services_reachable() -> None:
    if REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
        except redis.RedisError as error:
            pytest.exit(f"REDIS_URL={REDIS_URL} is set but Redis does not answer: {error}", 2)


@pytest.fixture
def flush_redis() -> None:
    """Start from an empty Redis database (the tests' own, from REDIS_URL)."""
    if REDIS_URL:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture
def empty_layer(flush_redis: None) -> None:
    """Start from an empty channel layer. The in-memory one is a process-wide object; Redis
    is emptied by flush_redis, not by layer.flush(), which would close connections that other
    event loops (e.g. workers.layer's sender thread) own. A Redis layer object is made anew:
    one keeps per-channel receive locks, and a lock held by an earlier test's (closed) event
    loop would fail the next receive on another loop."""
    from channels.layers import DEFAULT_CHANNEL_LAYER, InMemoryChannelLayer, channel_layers

    layer = channel_layers.backends.get(DEFAULT_CHANNEL_LAYER)
    if isinstance(layer, InMemoryChannelLayer):
        import asyncio

        asyncio.run(layer.flush())
    elif layer is not None:
        del channel_layers.backends[DEFAULT_CHANNEL_LAYER]


def database_url() -> str:
    """The URL of the database this test runs on, for processes the test starts."""
    settings_dict: dict[str, Any] = connection.settings_dict
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    user = settings_dict["USER"] or "postgres"
    host = settings_dict["HOST"] or "127.0.0.1"
    port = settings_dict["PORT"] or 5432
    return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture
def process_env(tmp_path: Path, transactional_db: None, flush_redis: None) -> dict[str, str]:
    """The environment for the project's processes: this test's database, layer and media."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JOBS_", "PYTEST_", "DJANGO_"))
    }
    env.update(
        FAST_JOBS,
        DJANGO_SETTINGS_MODULE="tests.settings",
        DJANGO_SECRET_KEY="tests-only-secret-key-0123456789-abcdefghijklmnop",
        DATABASE_URL=database_url(),
        STATE_DIR=str(tmp_path / "state"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def processes(process_env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(process_env, tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def password() -> str:
    return "a-long-test-password-42"


@pytest.fixture
def user(django_user_model: Any, password: str) -> Any:
    return django_user_model.objects.create_user(username="alice", password=password)


@pytest.fixture
def other_user(django_user_model: Any, password: str) -> Any:
    return django_user_model.objects.create_user(username="bob", password=password)

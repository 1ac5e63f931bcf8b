from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAST_JOBS, REDIS_URL, database_url
from tests.deploy.deployment import WEB, WORKER, Deployment
from tests.deploy.units import ENV_EXAMPLE, unit_environment
from tests.processes import Processes


@pytest.fixture
def deployment(tmp_path: Path, transactional_db: None, flush_redis: None) -> Iterator[Deployment]:
    """Starts the units' processes with deploy/env.example and this test's services."""
    state = tmp_path / "state"
    env = unit_environment(
        WEB,
        ENV_EXAMPLE,
        DATABASE_URL=database_url(),
        REDIS_URL=REDIS_URL,
        DJANGO_SECRET_KEY="deploy-tests-only-0123456789-abcdefghijklmnopqrstuvwxyz",
        STATE_DIR=str(state),
        DJANGO_SETTINGS_MODULE="tests.settings",
        **FAST_JOBS,
    )
    assert env["DJANGO_DEBUG"] == "0"
    assert unit_environment(WORKER, ENV_EXAMPLE) == unit_environment(WEB, ENV_EXAMPLE)
    processes = Processes(env, tmp_path)
    yield Deployment(processes, env, state)
    processes.stop_all()

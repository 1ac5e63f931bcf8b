from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAST_JOBS, REDIS_URL, database_url
from tests.deploy.deployment import METRICS, WEB, WORKER, Deployment
from tests.deploy.units import ENV_EXAMPLE, unit_environment
from tests.processes import Processes


@pytest.fixture
def deployment(tmp_path: Path, transactional_db: None, flush_redis: None) -> Iterator[Deployment]:
    """Starts the units' processes with deploy/env.example and this test's services."""
    state = tmp_path / "state"
    # The units' shared metrics directory (their RuntimeDirectory=), as systemd makes it.
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = unit_environment(
        WEB,
        ENV_EXAMPLE,
        DATABASE_URL=database_url(),
        REDIS_URL=REDIS_URL,
        DJANGO_SECRET_KEY="deploy-tests-only-0123456789-abcdefghijklmnopqrstuvwxyz",
        STATE_DIR=str(state),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        DJANGO_SETTINGS_MODULE="tests.settings",
        **FAST_JOBS,
    )
    assert env["DJANGO_DEBUG"] == "0"
    assert unit_environment(WORKER, ENV_EXAMPLE) == unit_environment(WEB, ENV_EXAMPLE)
    assert unit_environment(METRICS, ENV_EXAMPLE) == unit_environment(WEB, ENV_EXAMPLE)
    processes = Processes(env, tmp_path)
    yield Deployment(processes, env, state)
    processes.stop_all()

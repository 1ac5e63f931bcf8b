"""The cluster tests boot Debian hosts under systemd-nspawn (root, minutes): they run with
`make test-cluster` (PIPELINE_CLUSTER=1), not in the ordinary suite."""

from __future__ import annotations

import logging
import os

import pytest

CLUSTER = os.environ.get("PIPELINE_CLUSTER") == "1"
# A line per request of the load's twelve users would bury the figures the tests print.
logging.getLogger("httpx").setLevel(logging.WARNING)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CLUSTER:
        return
    deselected = [item for item in items if item.get_closest_marker("cluster")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]

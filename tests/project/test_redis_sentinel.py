"""With REDIS_SENTINELS, the site's Redis clients follow a failover: the channel layer and the
rate limiter of a process that was running before the primary died work again on the replica
that Sentinel promoted, as does a web server's /healthz (which checks the layer).

Real processes: a Redis primary, its replica and three Sentinels (tests/cluster/sentinel.py),
a long-lived Django process (tests/cluster/probe.py) and daphne, all on the real settings."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.sentinel import SentinelGroup
from tests.processes import ROOT, Processes, wait_for

# A failover here takes Sentinel's down-after (1 s), an election and the promotion: seconds.
FAILOVER_WAIT = 60


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    servers = SentinelGroup(tmp_path / "redis")
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


class Probe:
    """tests/cluster/probe.py, asked one check at a time."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tests.cluster.probe"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("wb"),
            text=True,
            start_new_session=True,
        )
        self.log = log

    def ask(self, command: str) -> dict[str, Any]:
        assert self.popen.stdin
        assert self.popen.stdout
        self.popen.stdin.write(command + "\n")
        self.popen.stdin.flush()
        line = self.popen.stdout.readline()
        assert line, f"the probe exited:\n{self.log.read_text()}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


@pytest.fixture
def probe(group: SentinelGroup, process_env: dict[str, str], tmp_path: Path) -> Iterator[Probe]:
    running = Probe({**process_env, **group.sentinels_env()}, tmp_path / "probe.log")
    try:
        yield running
    finally:
        running.stop()


def counted(group: SentinelGroup, port: int, key: str) -> int:
    """The hits counted for `key` (in any window) on the Redis server on `port`."""
    client = group.server_on(port).client()
    return sum(int(client.get(name) or 0) for name in client.keys(f"{key}:*"))


def healthz(url: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(url + "/healthz", timeout=5)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def test_layer_limiter_and_site_follow_a_failover(
    group: SentinelGroup, probe: Probe, processes: Processes
) -> None:
    primary_port = group.primary_port()
    assert primary_port == group.servers[0].port
    web = processes.daphne(**group.sentinels_env())

    assert probe.ask("layer") == {"ok": True}
    # channels-redis waits 5 s at a time in BZPOPMIN: the primary's sockets must outwait it
    # (redis-py's socket_timeout would otherwise fail an idle receiver).
    assert probe.ask("idle 7") == {"ok": True}
    assert probe.ask("limit before") == {"ok": True}
    # Counted in Redis (on the primary), not in the process: one sync and one async hit.
    assert counted(group, primary_port, "before") == 2
    assert (healthz(web.url) or {}).get("channel_layer") == "ok"

    group.server_on(primary_port).kill()
    # Before the promotion the Sentinels still name the dead primary: the limiter counts in
    # the process.
    assert probe.ask("limit during") == {"ok": True}
    replica_port = group.servers[1].port
    wait_for(
        lambda: group.primary_port() == replica_port,
        FAILOVER_WAIT,
        "Sentinel to promote the replica",
        0.2,
    )

    # The same process, with the clients it made before: the first calls after the failover
    # may fail (a connection to the dead primary); they must work again without a restart.
    wait_for(lambda: probe.ask("layer")["ok"], FAILOVER_WAIT, "the layer to work again", 0.5)
    # The limiter counts in the process for a few seconds after Redis failed, then in the
    # new primary again.
    wait_for(
        lambda: probe.ask("limit after")["ok"] and counted(group, replica_port, "after") > 0,
        FAILOVER_WAIT,
        "the rate limiter to count in the new primary",
        0.5,
    )
    # The process's log says so once each (not once a retry): Redis failing, then back at
    # the promoted replica.
    log = probe.log.read_text()
    assert log.count("Redis for the rate limits failing") == 1, log
    back = [line for line in log.splitlines() if "Redis for the rate limits back after" in line]
    assert len(back) == 1, log
    assert back[0].endswith(f"calls failed) at 127.0.0.1:{replica_port}"), log
    wait_for(
        lambda: (healthz(web.url) or {}).get("channel_layer") == "ok",
        FAILOVER_WAIT,
        "the site's /healthz to pass again",
        0.5,
    )

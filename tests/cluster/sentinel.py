"""A Redis primary, its replica and three Sentinels, as real local processes on free loopback
ports: what a failover does to the site's Redis clients, without a cluster of machines."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.processes import free_port, wait_for

MASTER_NAME = "pipeline"
# Sentinel takes a primary for down after this long without an answer (its default is 30 s).
DOWN_AFTER_MS = 1000


@dataclass
class RedisServer:
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class SentinelGroup:
    """The servers; `sentinels_env()` is what the site's settings read."""

    directory: Path
    servers: list[RedisServer] = field(default_factory=list)
    sentinels: list[RedisServer] = field(default_factory=list)

    def start_server(self, name: str, *args: str, sentinel: bool = False) -> RedisServer:
        port = free_port()
        directory = self.directory / name
        directory.mkdir(parents=True)
        config = directory / "redis.conf"
        # Sentinel rewrites its configuration file as it learns the group: it must be a file.
        lines = [
            "bind 127.0.0.1",
            f"port {port}",
            f'dir "{directory}"',
            'save ""',
            "appendonly no",
            *args,
        ]
        config.write_text("\n".join(lines) + "\n")
        log = directory / "log"
        command = [shutil.which("redis-server") or "redis-server", str(config)]
        if sentinel:
            command.append("--sentinel")
        popen = subprocess.Popen(
            command, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )
        server = RedisServer(name, port, popen, log)
        (self.sentinels if sentinel else self.servers).append(server)
        wait_for(lambda: self.answers(server), 10, f"{name} to answer on port {port}")
        return server

    @staticmethod
    def answers(server: RedisServer) -> bool:
        if server.popen.poll() is not None:
            raise AssertionError(f"{server.name} exited:\n{server.log.read_text()}")
        try:
            return bool(server.client().ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        primary = self.start_server("primary")
        self.start_server("replica", f"replicaof 127.0.0.1 {primary.port}")
        for number in range(3):
            self.start_server(
                f"sentinel{number}",
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary.port} 2",
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {MASTER_NAME} 10000",
                sentinel=True,
            )
        # Ready for a failover once every Sentinel knows the replica and the other two.
        wait_for(self.ready, 30, "the Sentinels to find the replica and each other", 0.2)

    def ready(self) -> bool:
        for sentinel in self.sentinels:
            try:
                master = sentinel.client().sentinel_master(MASTER_NAME)
            except redis.RedisError:
                return False
            if master["num-slaves"] < 1 or master["num-other-sentinels"] < 2:
                return False
        return True

    def primary_port(self) -> int | None:
        """The primary's port as every Sentinel names it, or None while they disagree."""
        ports = set()
        for sentinel in self.sentinels:
            try:
                address: Any = sentinel.client().sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                return None
            if not address:
                return None
            ports.add(int(address[1]))
        return ports.pop() if len(ports) == 1 else None

    def server_on(self, port: int) -> RedisServer:
        return next(server for server in self.servers if server.port == port)

    def sentinels_env(self) -> dict[str, str]:
        return {
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels),
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            # The primary's database; the host is not used (Sentinel says where it is).
            "REDIS_URL": f"redis://{MASTER_NAME}/0",
        }

    def stop(self) -> None:
        for server in [*self.sentinels, *self.servers]:
            server.stop()

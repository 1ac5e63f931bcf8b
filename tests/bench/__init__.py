"""Benchmarks, run with `make bench` (`python -m tests.bench`), never by `make test`.

Each `bench_*.py` module has a `main() -> None`. The helpers below give a benchmark its own
PostgreSQL database and Redis database indexes, so that it never touches the tests' data, and
start and stop the project's processes in their own process groups.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pipeline"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/1"
# Benchmark processes run as production would, with DEBUG off (which needs a secret key and
# allowed hosts), but speak plain HTTP on loopback.
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "benchmark-only-secret-key-" + "x" * 40,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
}


def out(text: str = "") -> None:
    """Write one line of the benchmark's report to stdout, at once."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def database_url(name: str) -> str:
    """DATABASE_URL (a PostgreSQL one) with its database name replaced by `name`."""
    base = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    parts = urlsplit(base)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise SystemExit(f"DATABASE_URL={base!r}: the benchmarks need PostgreSQL")
    return urlunsplit(parts._replace(path=f"/{name}"))


def redis_url(index: int) -> str:
    """REDIS_URL's server with database `index` instead of the one it names."""
    base = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    return urlunsplit(urlsplit(base)._replace(path=f"/{index}"))


def flush_redis(*urls: str) -> None:
    for url in urls:
        redis.Redis.from_url(url, socket_connect_timeout=3).flushdb()


def _admin_execute(url: str, statement: sql.Composed) -> None:
    """Run `statement` on the maintenance database of the server that `url` points to."""
    parts = urlsplit(url)
    with psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
    ) as admin:
        admin.execute(statement)


def _drop_database(url: str) -> None:
    name = sql.Identifier(urlsplit(url).path.lstrip("/"))
    _admin_execute(url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


@contextmanager
def bench_database(name: str = "pipeline_bench", *, root: Path = ROOT) -> Iterator[str]:
    """A fresh PostgreSQL database for one benchmark, migrated by the code under `root` (this
    checkout, or an export of an older commit), dropped afterwards."""
    url = database_url(name)
    _drop_database(url)
    _admin_execute(url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=root,
            env={**os.environ, **PRODUCTION_ENV, "DATABASE_URL": url},
            check=True,
            timeout=120,
        )
        yield url
    finally:
        # Django's connections in this process would keep the database from being dropped.
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        _drop_database(url)


def setup_django(*, database: str, redis: str, settings: str = "tests.settings") -> None:
    """Configure Django in this process for `database` and `redis` (once per process)."""
    os.environ.update(PRODUCTION_ENV)
    os.environ["DATABASE_URL"] = database
    os.environ["REDIS_URL"] = redis
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    import django

    django.setup()


class BenchProcess:
    """A subprocess in its own process group, its output in a log file; run in `cwd` (this
    checkout unless told)."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: dict[str, str],
        log: Path,
        *,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as handle:
            self.popen = subprocess.Popen(
                list(args),
                cwd=cwd,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process and the children it forked (its process
        group: Dramatiq runs its workers in child processes) have used so far (Linux)."""
        total = 0
        for stat_path in Path("/proc").glob("[0-9]*/stat"):
            try:
                stat = stat_path.read_text()
            except OSError:
                continue
            # Fields after the parenthesised command name: pgrp is the 3rd, utime and
            # stime the 12th and 13th.
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == self.popen.pid:
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def wait_for_output(self, text: str, timeout: float) -> None:
        wait_for(lambda: text in self.output() or not self.alive(), timeout, f"{self.name}: {text}")
        if not self.alive():
            raise RuntimeError(f"{self.name} exited:\n{self.output()[-3000:]}")

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM to the whole group, SIGKILL if it is still there after `timeout`."""
        if not self.alive():
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        except ProcessLookupError:
            pass


def status_kib(pid: int, field: str, default: int | None = None) -> int:
    """A field of a live process's /proc/<pid>/status in KiB: VmRSS (resident now) or VmHWM
    (its peak). Without the field (a process gone), `default`, or KeyError."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    if default is None:
        raise KeyError(f"no {field} in /proc/{pid}/status")
    return default


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` in 0..1) of `values`."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]

"""Log-in flood: wrong-password POSTs at a real daphne, and what they cost it.

One daphne process (production settings, Django's PBKDF2 hasher, PostgreSQL, Redis), reached
as nginx passes requests on (X-Forwarded-For, daphne --proxy-headers). Three phases, each on
CLIENTS concurrent keep-alive connections, each timed and charged with daphne's CPU time
(user + system, from /proc):

* normal log-ins: the right password, NORMAL times;
* checked failures: wrong passwords for FRESH different usernames from as many addresses, none
  near a limit, so each runs the hasher: what every attempt of a flood would cost unlimited;
* page views: GETs of the log-in form, the floor a request costs daphne and Django here;
* the flood: FLOOD wrong passwords for one username from one address; after the limit (5)
  each is refused by the lockout before any password is checked.

Printed, not asserted. Loopback only; bounded in requests and time.

    .venv/bin/python -m tests.bench.bench_login [--flood 2000]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from tests.bench import (
    PRODUCTION_ENV,
    BenchProcess,
    bench_database,
    flush_redis,
    out,
    redis_url,
    setup_django,
    wait_for,
)
from tests.processes import free_port

# A Redis database index of this benchmark's own (see bench_jobs for the others').
REDIS_DB = 6
CLIENTS = 8
NORMAL = 40
FRESH = 40
FLOOD = 2000
PASSWORD = "a-long-bench-password-42"
SETTINGS = "tests.bench.login_settings"


@dataclass
class Phase:
    name: str
    statuses: Counter[int]
    seconds: float
    cpu: float

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


class Site:
    """Log-in POSTs to daphne, each as if from `address` through nginx."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        probe = httpx.get(self.base + "/accounts/login/", timeout=10)
        probe.raise_for_status()
        self.csrf = probe.cookies["csrftoken"]
        self.local = threading.local()

    def client(self) -> httpx.Client:
        client = getattr(self.local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base, timeout=30)
            self.local.client = client
        return client

    def view_form(self) -> int:
        return self.client().get("/accounts/login/").status_code

    def log_in(self, username: str, password: str, address: str) -> int:
        response = self.client().post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": self.csrf},
            headers={
                "X-Forwarded-For": address,
                "Cookie": f"csrftoken={self.csrf}",
                "Referer": self.base + "/accounts/login/",
            },
        )
        return response.status_code


def run_phase(
    name: str, daphne: BenchProcess, calls: list[Callable[[], int]], clients: int
) -> Phase:
    cpu_before = daphne.cpu_seconds()
    began = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        statuses = Counter(pool.map(lambda call: call(), calls))
    seconds = time.monotonic() - began
    return Phase(name, statuses, seconds, daphne.cpu_seconds() - cpu_before)


def report(phase: Phase, per: str, count: int) -> None:
    shown = ", ".join(f"{status}: {n}" for status, n in sorted(phase.statuses.items()))
    out(
        f"{phase.name:<18} {phase.requests:>5} requests in {phase.seconds:6.2f} s "
        f"({phase.requests / phase.seconds:7.1f}/s)  [{shown}]  "
        f"daphne CPU {phase.cpu:6.2f} s = {1000 * phase.cpu / max(count, 1):7.2f} ms per {per}"
    )


def make_users(count: int) -> None:
    """The bench's users, all with PASSWORD, hashed once (PBKDF2 is the slow part)."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User

    encoded = make_password(PASSWORD)
    User.objects.bulk_create(
        [User(username="owner", password=encoded)]
        + [User(username=f"user{n}", password=encoded) for n in range(count)]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=FLOOD)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    redis = redis_url(REDIS_DB)
    flush_redis(redis)
    with bench_database("pipeline_bench_login") as database, tempfile.TemporaryDirectory() as tmp:
        setup_django(database=database, redis=redis, settings=SETTINGS)
        # The project's logging config logs every httpx request at INFO.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        make_users(FRESH)
        port = free_port()
        env = {
            **os.environ,
            **PRODUCTION_ENV,
            "DATABASE_URL": database,
            "REDIS_URL": redis,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "STATE_DIR": tmp,
        }
        argv_daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        argv_daphne += ["--proxy-headers", "project.asgi:application"]
        daphne = BenchProcess("daphne", argv_daphne, env, Path(tmp) / "daphne.log")
        try:
            wait_for(lambda: _serving(port) or not daphne.alive(), 60, "daphne to serve")
            if not daphne.alive():
                raise RuntimeError(daphne.output())
            site = Site(port)
            clients = args.clients
            out(f"daphne (1 process), PBKDF2, PostgreSQL + Redis; {clients} concurrent clients")
            normal = run_phase(
                "normal log-ins",
                daphne,
                [partial(site.log_in, "owner", PASSWORD, "192.0.2.1")] * NORMAL,
                clients,
            )
            fresh = run_phase(
                "checked failures",
                daphne,
                [
                    partial(site.log_in, f"user{n}", "wrong", f"198.51.100.{n + 1}")
                    for n in range(FRESH)
                ],
                clients,
            )
            views = run_phase("page views", daphne, [site.view_form] * NORMAL * 10, clients)
            flood = run_phase(
                "flood (1 user)",
                daphne,
                [partial(site.log_in, "owner", "wrong", "203.0.113.5")] * args.flood,
                clients,
            )
            refused = flood.statuses.get(429, 0)
            report(normal, "log-in", NORMAL)
            report(fresh, "attempt", FRESH)
            report(views, "page view", NORMAL * 10)
            report(flood, "attempt", args.flood)
            out(
                f"flood: {refused} of {flood.requests} refused (429) by the lockout; "
                f"{flood.requests - refused} had their password checked"
            )
            per_refused = flood.cpu / max(flood.requests, 1)
            per_login = normal.cpu / NORMAL
            out(
                f"CPU per refused attempt {1000 * per_refused:.2f} ms vs per normal log-in "
                f"{1000 * per_login:.2f} ms ({per_login / per_refused:.0f}x): the hasher does "
                "not run for a refused attempt"
            )
        finally:
            daphne.stop()


def _serving(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return True


if __name__ == "__main__":
    main()

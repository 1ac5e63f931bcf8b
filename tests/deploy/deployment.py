"""Running the units' own command lines as processes, and talking to them as nginx would.

The environment is the units' (a bare PATH, Environment=, deploy/env.example), plus the test's
database, Redis, state directory and secret, the fast job timings of the other process tests,
and DJANGO_SETTINGS_MODULE=tests.settings (the production settings plus the test-only
/test/enqueue/ view). Requests come in as nginx passes them on: HTTPS by X-Forwarded-Proto,
the site's host name, the client's address in X-Forwarded-For.
"""

from __future__ import annotations

import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.deploy.units import (
    ENV_EXAMPLE,
    UNITS,
    Unit,
    command,
    parse_env_file,
    parse_unit,
    sandboxed,
    to_checkout,
)
from tests.processes import Process, Processes, free_port, wait_for, wait_until_listening
from tests.processes import log_in as log_in_through_the_form

SITE = parse_env_file(ENV_EXAMPLE)["DJANGO_ALLOWED_HOSTS"].split(",")[0]
WEB = parse_unit(UNITS / "pipeline-web.service")
COLLECTSTATIC = parse_unit(UNITS / "pipeline-collectstatic.service")
WORKER = parse_unit(UNITS / "pipeline-worker@.service")
METRICS = parse_unit(UNITS / "pipeline-metrics.service")
# settings.LOGGING's format: every line a process writes is one of these.
LOG_LINE = re.compile(r"^level=[A-Z]+ logger=\S+ pid=\d+ ")


class AsNginx(httpx.HTTPTransport):
    """Sends https://SITE/... requests to daphne's loopback port with nginx's headers."""

    def __init__(self, port: int, client_address: str = "127.0.0.1") -> None:
        super().__init__()
        self.port = port
        self.client_address = client_address

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # A new request: the client keeps the original, with its https URL, for the cookies.
        headers = request.headers.copy()
        headers["X-Forwarded-Proto"] = request.url.scheme
        headers["X-Forwarded-For"] = self.client_address
        proxied = httpx.Request(
            request.method,
            request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port),
            headers=headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return super().handle_request(proxied)


def site_client(web: Process, client_address: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(
        base_url=f"https://{SITE}", transport=AsNginx(web.port or 0, client_address), timeout=10
    )


def probe_client(web: Process, client_address: str = "127.0.0.1") -> httpx.Client:
    """What nginx's default server passes on for a probe or Prometheus by the host's IP:
    plain HTTP, under the site's name, from the address nginx saw."""
    return httpx.Client(
        base_url=f"http://{SITE}", transport=AsNginx(web.port or 0, client_address), timeout=10
    )


def site_websocket(web: Process, path: str, client_address: str = "127.0.0.1") -> Any:
    """A websocket to https://SITE/path, reaching daphne's loopback port with the headers
    nginx adds (its Host is the site's, and X-Forwarded-Proto says https)."""
    connection = socket.create_connection(("127.0.0.1", web.port or 0))
    return websockets.connect(
        f"ws://{SITE}{path}",
        sock=connection,
        origin=websockets.Origin(f"https://{SITE}"),
        additional_headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": client_address},
    )


def log_in(client: httpx.Client, username: str, password: str) -> httpx.Client:
    """Log in through the real form, over "HTTPS" (the session cookie is Secure)."""
    client.headers["Referer"] = f"https://{SITE}/"
    return log_in_through_the_form(client, username, password)


@dataclass
class Deployment:
    processes: Processes
    env: dict[str, str]
    state: Path

    def run_oneshot(self, unit: Unit, **env: str) -> subprocess.CompletedProcess[str]:
        """A oneshot unit's ExecStart, run to its end."""
        return subprocess.run(
            sandboxed(unit, command(unit)),
            env={**self.env, **env},
            cwd=to_checkout(unit.value("Service", "WorkingDirectory")),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def web(self, name: str = "web", **env: str) -> Process:
        """The unit it requires (collectstatic), then its ExecStart (on a free port), as
        systemd starts it."""
        assert COLLECTSTATIC.name in WEB.value("Unit", "Requires").split()
        collect = self.run_oneshot(COLLECTSTATIC, **env)
        assert collect.returncode == 0, collect.stdout + collect.stderr
        argv = command(WEB)
        port = free_port()
        endpoint = argv.index("--endpoint") + 1
        assert ":port=8001:" in argv[endpoint], argv
        argv[endpoint] = argv[endpoint].replace(":port=8001:", f":port={port}:")
        process = self.processes.start(name, sandboxed(WEB, argv), port=port, **env)
        client = site_client(process)

        def serving() -> bool:
            assert process.alive(), process.output()
            try:
                return client.get("/healthz").status_code in {200, 503}
            except httpx.TransportError:
                return False

        wait_for(serving, 30, f"{name} to serve")
        return process

    def worker(self, instance: str, **env: str) -> Process:
        argv = sandboxed(WORKER, command(WORKER, instance=instance))
        process = self.processes.start(f"worker@{instance}", argv, **env)
        wait_until_listening(process)
        return process

    def metrics_server(self, name: str = "metrics", **env: str) -> Process:
        """The metrics unit's ExecStart, on a free loopback port (the unit listens on every
        address, for the monitoring network), once it answers."""
        argv = command(METRICS)
        port = free_port()
        argv[argv.index("--port") + 1] = str(port)
        argv[argv.index("--bind") + 1] = "127.0.0.1"
        process = self.processes.start(name, sandboxed(METRICS, argv), port=port, **env)

        def serving() -> bool:
            assert process.alive(), process.output()
            try:
                httpx.get(f"{process.url}/metrics", timeout=5)
            except httpx.TransportError:
                return False
            return True

        wait_for(serving, 30, f"{name} to serve")
        return process


def assert_structured_logs(*processes: Process) -> None:
    for process in processes:
        lines = [line for line in process.output().splitlines() if line.strip()]
        assert lines, f"{process.name} logged nothing"
        bad = [line for line in lines if not LOG_LINE.match(line)]
        assert not bad, f"{process.name} wrote lines journald would keep unstructured: {bad}"

"""Starting the project's own processes (runserver, runworker, daphne) for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.popen.send_signal(signum)

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode


class Processes:
    """Starts processes with the test environment and stops them all at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.started: list[Process] = []

    def start(self, name: str, args: list[str], port: int | None = None, **env: Any) -> Process:
        log = self.log_dir / f"{name}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = Process(name, popen, log, port)
        self.started.append(process)
        return process

    def manage(self, name: str, *args: str, **env: str) -> Process:
        return self.start(name, [sys.executable, "manage.py", *args], **env)

    def runserver(self, name: str = "web", *flags: str, **env: Any) -> Process:
        port = free_port()
        process = self.start(
            name,
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}", *flags],
            port=port,
            **env,
        )
        wait_until_serving(process)
        return process

    def daphne(
        self, name: str = "daphne", application: str = "project.asgi:application", **env: str
    ) -> Process:
        """daphne serving `application` on a free port of loopback, once it answers."""
        port = free_port()
        process = self.start(
            name,
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                application,
            ],
            port=port,
            **env,
        )
        wait_until_serving(process)
        return process

    def runworker(self, name: str = "worker", *channels: str, **env: str) -> Process:
        process = self.manage(
            name, "runworker", *(channels or ("thumbnails", "compute", "chat-messages")), **env
        )
        wait_until_listening(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            process.stop(timeout=10)


def wait_until_listening(process: Process, timeout: float = 30) -> None:
    """Wait for a worker process to listen on its channels."""
    wait_for(
        lambda: "listening on channels" in process.output() or not process.alive(),
        timeout,
        f"{process.name} to start",
    )
    assert process.alive(), process.output()


def wait_until_serving(process: Process, timeout: float = 30) -> None:
    def serving() -> bool:
        if not process.alive():
            raise AssertionError(f"{process.name} exited:\n{process.output()}")
        try:
            httpx.get(process.url + "/", timeout=1)
        except httpx.HTTPError:
            return False
        return True

    wait_for(serving, timeout, f"{process.name} to serve")


def login(base_url: str, username: str, password: str) -> httpx.Client:
    """An HTTP client logged in through the real login form, carrying its CSRF token."""
    client = httpx.Client(base_url=base_url, timeout=10, follow_redirects=False)
    client.headers["Referer"] = base_url + "/"
    return log_in(client, username, password)


def log_in(client: httpx.Client, username: str, password: str) -> httpx.Client:
    """Log `client` in through the real login form; later requests carry the CSRF token."""
    client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )
    assert response.status_code == 302, response.text
    client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
    return client

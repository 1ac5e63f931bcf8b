"""Helpers for tests of the job runtime: enqueue through the test view, wait for a job, run
this project's worker on the test's own loop, read what reached a channel, compare rows, and
start a private Redis."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from tests.processes import free_port, wait_for
from workers.models import Job
from workers.worker import Worker


def enqueue(client: httpx.Client, task: str, *args: Any, **body: Any) -> int:
    """Enqueue one of tests/tasks.py through the test-only view, as the client's user."""
    response = client.post("/test/enqueue/", json={"task": task, "args": list(args), **body})
    assert response.status_code == 202, response.text
    return int(response.json()["job"])


def job_when(job_id: int, *statuses: str, timeout: float = 30) -> Job:
    def reached() -> Job | None:
        job = Job.objects.get(pk=job_id)
        return job if job.status in statuses else None

    return wait_for(reached, timeout, f"job {job_id} to be {' or '.join(statuses)}")


async def until(condition: Callable[[], Any], timeout: float = 20, what: str = "") -> None:
    """Wait on the running loop until `condition()` (sync, may use the database) holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await database_sync_to_async(condition)():
        assert asyncio.get_running_loop().time() < deadline, what or "not reached in time"
        await asyncio.sleep(0.05)


def new_worker(
    channels: Sequence[str] = ("compute",), worker_class: type[Worker] = Worker
) -> Worker:
    """This project's Worker for `channels`, on the project's application and channel layer."""
    from project.asgi import application

    return worker_class(
        application=application,
        channels=list(channels),
        channel_layer=get_channel_layer(),
        handle_signals=False,
    )


async def run_worker_until(
    condition: Callable[[], Any],
    channels: Sequence[str] = ("compute",),
    timeout: float = 30,
    worker_class: type[Worker] = Worker,
) -> None:
    """Run this project's Worker on the running loop until `condition()` (sync, may use the
    database) holds, then stop it as SIGTERM would."""
    worker = new_worker(channels, worker_class)
    task = asyncio.ensure_future(worker.arun())
    try:
        await until(condition, timeout, "the worker did not get there")
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 15)


async def receive_all(channel: str, quiet: float = 0.5) -> list[dict[str, Any]]:
    """Every message waiting on `channel` (of the layer), until none comes for `quiet` s."""
    layer = get_channel_layer()
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), quiet))
        except TimeoutError:
            return received


def columns(job: Job) -> dict[str, Any]:
    """The job's value of every column, by column name."""
    return {field.attname: getattr(job, field.attname) for field in Job._meta.concrete_fields}


def start_redis(directory: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """A Redis of the test's own (on `port`, e.g. to restart it), so that stopping it disturbs
    nothing else; returns once it answers."""
    import redis

    port = port or free_port()
    server = shutil.which("redis-server")
    assert server, "redis-server is needed for this test"
    popen = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
    )

    def answers() -> bool:
        try:
            return bool(redis.Redis(port=port, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    wait_for(answers, 10, f"the private Redis on port {port}")
    return popen, port

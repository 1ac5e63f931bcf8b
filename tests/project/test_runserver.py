"""`runserver` on the embedded default runs the named-channel workers in-process; with Redis,
`runserver --noworker` and `runworker` share the work across processes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.clients import connect_ws
from tests.processes import Processes, login, wait_for
from workers.models import Job

pytestmark = pytest.mark.slow


def wait_done(job_id: int) -> Job:
    return wait_for(
        lambda: Job.objects.filter(pk=job_id, status__in=["succeeded", "failed"]).first(),
        30,
        f"job {job_id} to finish",
    )


def test_embedded_runserver_consumes_named_channel_messages_in_process(
    processes: Processes, user: Any, password: str
) -> None:
    # The embedded default: no Redis, the in-memory layer, workers inside the server.
    web = processes.runserver("web", REDIS_URL="")
    assert "Workers: running in this process" in web.output()
    assert httpx.get(web.url + "/").status_code == 200
    client = login(web.url, user.username, password)
    response = client.post("/test/enqueue/", json={"task": "count_up", "args": [2, 0.05]})
    assert response.status_code == 202
    job = wait_done(response.json()["job"])
    assert job.status == "succeeded"
    assert job.result["pid"] == web.popen.pid


def test_embedded_runserver_answers_websocket_pings(processes: Processes) -> None:
    web = processes.runserver("web", REDIS_URL="")

    async def ping() -> dict[str, Any]:
        ws = await connect_ws(web.url, "/ws/ping/")
        await ws.send(json.dumps({"hello": "daphne"}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        await ws.close()
        return answer

    assert asyncio.run(ping())["echo"] == {"hello": "daphne"}


def test_embedded_runserver_without_workers_leaves_jobs_queued(
    processes: Processes, user: Any, password: str
) -> None:
    web = processes.runserver("web", "--noworker", REDIS_URL="")
    assert "Workers: not in this process (--noworker)" in web.output()
    client = login(web.url, user.username, password)
    job_id = client.post("/test/enqueue/", json={"task": "trivial"}).json()["job"]
    # Nothing in this process consumes the channel, so the job waits (durably) for a worker.
    with pytest.raises(AssertionError):
        wait_for(lambda: Job.objects.get(pk=job_id).status != "queued", 2, "a worker")


@pytest.mark.redis
def test_with_redis_a_separate_runworker_process_consumes_the_channel(
    processes: Processes, user: Any, password: str
) -> None:
    web = processes.runserver("web", "--noworker")
    worker = processes.runworker("worker")
    client = login(web.url, user.username, password)
    response = client.post("/test/enqueue/", json={"task": "count_up", "args": [2, 0.05]})
    job = wait_done(response.json()["job"])
    assert job.status == "succeeded"
    assert job.result["pid"] == worker.popen.pid
    assert job.result["pid"] != web.popen.pid


@pytest.mark.redis
def test_daphne_serves_the_site_and_runworker_does_the_work(
    processes: Processes, user: Any, password: str
) -> None:
    web = processes.daphne("daphne")
    worker = processes.runworker("worker")
    client = login(web.url, user.username, password)
    response = client.post("/test/enqueue/", json={"task": "trivial"})
    job = wait_done(response.json()["job"])
    assert job.status == "succeeded"
    assert job.worker_id.split(":")[1] == str(worker.popen.pid)

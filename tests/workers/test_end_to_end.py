"""The job runtime across real processes: runserver/daphne, runworker, PostgreSQL, Redis.

Each test drives a job down the whole path (a view enqueues it, Redis carries its wake-up, a
`runworker` process claims and runs it, the page's websocket hears of it), and a process is
started, signalled or killed as in production; a failure here may come from any module of
workers/. What one module does on its own is tested in that module's test file."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.clients import connect_ws, receive_until
from tests.jobs import enqueue, job_when, start_redis
from tests.processes import Processes, login, wait_for
from workers.models import Job

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def marks_in(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() for _ in p.read_text().splitlines())


def test_job_from_a_view_runs_in_runworker_and_its_progress_reaches_the_websocket(
    processes: Processes, user: Any, password: str
) -> None:
    web = processes.runserver("web", "--noworker")
    worker = processes.runworker("worker")
    client = login(web.url, user.username, password)

    async def scenario() -> list[dict[str, Any]]:
        ws = await connect_ws(web.url, "/ws/jobs/", client)
        snapshot = await receive_until(ws, lambda f: f["type"] == "jobs.snapshot", 5)
        assert snapshot[-1]["jobs"] == []
        job_id = await asyncio.to_thread(enqueue, client, "count_up", 4, 0.1)
        frames = await receive_until(ws, lambda f: f["type"] in {"job.done", "job.failed"}, 30)
        await ws.close()
        assert all(frame["job"] == job_id for frame in frames)
        return frames

    frames = asyncio.run(scenario())
    progress = [f["progress"] for f in frames]
    assert progress == sorted(progress), f"progress went backwards: {progress}"
    assert [f["message"] for f in frames if f["message"]][:4] == [
        f"step {n} of 4" for n in range(1, 5)
    ]
    assert frames[-1]["type"] == "job.done"
    assert frames[-1]["status"] == "succeeded"
    assert frames[-1]["progress"] == 100
    job = Job.objects.get(pk=frames[-1]["job"])
    # Run by the worker process, not the web process.
    assert job.result["pid"] == worker.popen.pid
    assert job.owner_id == user.pk


def test_another_users_progress_is_never_sent_to_me(
    processes: Processes, user: Any, other_user: Any, password: str
) -> None:
    web = processes.runserver("web", "--noworker")
    processes.runworker("worker")
    alice = login(web.url, user.username, password)
    bob = login(web.url, other_user.username, password)

    async def scenario() -> list[dict[str, Any]]:
        bob_ws = await connect_ws(web.url, "/ws/jobs/", bob)
        alice_ws = await connect_ws(web.url, "/ws/jobs/", alice)
        await receive_until(bob_ws, lambda f: f["type"] == "jobs.snapshot", 5)
        await receive_until(alice_ws, lambda f: f["type"] == "jobs.snapshot", 5)
        alice_job = await asyncio.to_thread(enqueue, alice, "count_up", 3, 0.05)
        bob_job = await asyncio.to_thread(enqueue, bob, "trivial")
        await receive_until(alice_ws, lambda f: f["type"] == "job.done", 30)
        seen_by_bob = await receive_until(
            bob_ws, lambda f: f["type"] == "job.done" and f["job"] == bob_job, 30
        )
        await asyncio.gather(alice_ws.close(), bob_ws.close())
        assert all(frame["job"] != alice_job for frame in seen_by_bob), seen_by_bob
        return seen_by_bob

    assert asyncio.run(scenario())


def test_anonymous_jobs_socket_is_refused(processes: Processes) -> None:
    web = processes.runserver("web", "--noworker")

    async def scenario() -> None:
        ws = await connect_ws(web.url, "/ws/jobs/")
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401

    asyncio.run(scenario())


def test_an_idle_worker_survives_the_layers_blocking_reads(
    processes: Processes, user: Any, password: str
) -> None:
    # redis-py 8's default 5 s socket timeout against channels-redis' 5 s BZPOPMIN used to
    # kill idle workers with TimeoutError; the layer config must keep them alive.
    web = processes.runserver("web", "--noworker")
    worker = processes.runworker("worker")
    time.sleep(12)
    assert worker.alive(), worker.output()
    assert "Timeout reading" not in worker.output()
    client = login(web.url, user.username, password)
    job = job_when(enqueue(client, "trivial"), "succeeded")
    assert job.worker_id.split(":")[1] == str(worker.popen.pid)


def test_a_killed_worker_s_job_is_finished_by_another_exactly_once(
    processes: Processes, user: Any, password: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    web = processes.runserver("web", "--noworker")
    first = processes.runworker("worker-1", "compute")
    client = login(web.url, user.username, password)
    # Long enough (8 s) that the first worker is surely killed before it would finish.
    job_id = enqueue(client, "count_up", 80, 0.1, kwargs={"marks": str(marks)})
    job = job_when(job_id, "running")
    assert job.worker_id.split(":")[1] == str(first.popen.pid)
    second = processes.runworker("worker-2", "compute")
    wait_for(lambda: Job.objects.get(pk=job_id).progress >= 5, 10, "the job to be under way")
    first.kill()
    # STALE_AFTER is 3 s in tests: the second worker's sweep takes the job over.
    job = job_when(job_id, "succeeded", timeout=30)
    assert job.result["pid"] == second.popen.pid
    assert job.attempts == 2
    assert len(job.worker_ids) == 2
    # The side effect at the end of the task happened once: by the surviving worker.
    assert marks_in(marks) == [f"count_up-{job_id}"]


def test_sigterm_lets_the_running_job_finish_and_loses_nothing(
    processes: Processes, user: Any, password: str
) -> None:
    web = processes.runserver("web", "--noworker")
    worker = processes.runworker("worker", "compute")
    client = login(web.url, user.username, password)
    running = enqueue(client, "count_up", 10, 0.2)
    job_when(running, "running")
    waiting = [enqueue(client, "trivial") for _ in range(3)]
    time.sleep(0.3)
    worker.signal(signal.SIGTERM)
    assert worker.popen.wait(20) == 0, worker.output()
    assert Job.objects.get(pk=running).status == "succeeded"
    # Jobs it did not start are still queued, and a new worker runs them.
    assert all(Job.objects.get(pk=pk).status == "queued" for pk in waiting)
    processes.runworker("worker-2", "compute")
    for pk in waiting:
        job_when(pk, "succeeded")


def test_sigterm_past_the_grace_period_hands_the_job_back(
    processes: Processes, user: Any, password: str
) -> None:
    web = processes.runserver("web", "--noworker")
    worker = processes.runworker("worker", "compute", JOBS_SHUTDOWN_GRACE="1")
    client = login(web.url, user.username, password)
    job_id = enqueue(client, "count_up", 40, 0.1)
    job_when(job_id, "running")
    worker.signal(signal.SIGTERM)
    assert worker.popen.wait(20) == 0, worker.output()
    job = Job.objects.get(pk=job_id)
    assert job.status == "queued"
    assert job.attempts == 0, "a handed-back attempt must not count against the job"
    processes.runworker("worker-2", "compute")
    assert job_when(job_id, "succeeded").attempts == 1


def test_a_duplicated_wakeup_runs_the_job_once(
    processes: Processes, user: Any, password: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    web = processes.runserver("web", "--noworker")
    processes.runworker("worker-1", "compute")
    processes.runworker("worker-2", "compute")
    client = login(web.url, user.username, password)
    job_id = enqueue(client, "count_up", 3, 0.2, kwargs={"marks": str(marks)})
    from asgiref.sync import async_to_sync
    from channels.exceptions import ChannelFull
    from channels.layers import get_channel_layer

    def send_once_taken() -> bool:
        # The channel holds one wake-up at a time: each duplicate goes in once the workers
        # took the one before.
        try:
            async_to_sync(get_channel_layer().send)(
                "compute", {"type": "job.wakeup", "job": job_id}
            )
        except ChannelFull:
            return False
        return True

    for _ in range(5):
        wait_for(send_once_taken, 10, "room for a duplicate wake-up", interval=0.02)
    job = job_when(job_id, "succeeded")
    time.sleep(1)
    assert job.attempts == 1
    assert marks_in(marks) == [f"count_up-{job_id}"]


def test_failures_retry_with_backoff_then_fail_with_the_message(
    processes: Processes, user: Any, password: str
) -> None:
    web = processes.runserver("web", "--noworker")
    processes.runworker("worker", "compute")
    client = login(web.url, user.username, password)
    flaky = enqueue(client, "always_fails", "the disk is on fire")
    permanent = enqueue(client, "bad_input", "that is not an image")
    # After the first failure the job waits for its backoff (1.5 ** 1 s), not run again at once.
    waiting = wait_for(
        lambda: Job.objects.filter(pk=flaky, status="queued", attempts=1).first(),
        20,
        "the first failure",
        interval=0.02,
    )
    assert (waiting.run_after - waiting.updated_at).total_seconds() > 1.4
    job = job_when(flaky, "failed", timeout=40)
    assert job.attempts == 3
    assert job.error == "RuntimeError: the disk is on fire"
    assert "Traceback" in job.traceback
    job = job_when(permanent, "failed")
    assert job.attempts == 1
    assert job.error == "that is not an image"


def test_a_task_over_its_time_limit_fails_with_a_clear_reason(
    processes: Processes, user: Any, password: str
) -> None:
    web = processes.runserver("web", "--noworker")
    processes.runworker("worker", "compute")
    client = login(web.url, user.username, password)
    slow = enqueue(client, "sleepy", 30, time_limit=1)
    job = job_when(slow, "failed", timeout=20)
    assert job.error == "took longer than its time limit of 1 s"
    # The worker goes on with the next job.
    job_when(enqueue(client, "trivial"), "succeeded")


def test_redis_restarted_while_jobs_are_queued_loses_no_job(
    processes: Processes, user: Any, password: str, tmp_path: Path
) -> None:
    # A Redis of this test's own, so that restarting it disturbs nothing else.
    redis_proc, port = start_redis(tmp_path)
    redis_url = f"redis://127.0.0.1:{port}/0"
    try:
        web = processes.runserver("web", "--noworker", REDIS_URL=redis_url)
        worker = processes.runworker("worker", "compute", REDIS_URL=redis_url)
        client = login(web.url, user.username, password)
        blocker = enqueue(client, "count_up", 10, 0.2)
        job_when(blocker, "running")
        queued = [enqueue(client, "trivial") for _ in range(10)]
        # Redis goes away with every wake-up in it, and comes back empty.
        redis_proc.terminate()
        redis_proc.wait(10)
        more = [enqueue(client, "trivial") for _ in range(5)]  # accepted while Redis is down
        time.sleep(2)
        redis_proc, _ = start_redis(tmp_path, port)
        for pk in [blocker, *queued, *more]:
            job_when(pk, "succeeded", timeout=60)
        assert worker.alive(), worker.output()
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)


def test_two_workers_share_one_channel_fairly_and_run_every_job_once(
    processes: Processes, user: Any, password: str, tmp_path: Path
) -> None:
    # How much faster two workers finish is a benchmark's figure (tests/bench/bench_scaling.py);
    # that both take a fair share and no job runs twice is behaviour.
    web = processes.runserver("web", "--noworker")
    client = login(web.url, user.username, password)
    marks = tmp_path / "marks"
    # Queue all 40 first, then start the workers together, as the benchmark does.
    ids = [enqueue(client, "burn_cpu", 0.3, str(marks)) for _ in range(40)]
    for n in range(2):
        processes.manage(f"worker-{n}", "runworker", "compute")
    for pk in ids:
        job_when(pk, "succeeded", timeout=120)
    shares: dict[int, int] = {}
    for job in Job.objects.filter(pk__in=ids):
        shares[job.result] = shares.get(job.result, 0) + 1
        assert job.attempts == 1
    assert len(shares) == 2, shares
    assert min(shares.values()) >= 12, f"unfair shares: {shares}"
    # Each job's side effect happened once: 40 marks in all.
    assert len(marks_in(marks)) == 40


def test_sigterm_with_the_task_in_a_long_c_call_hands_the_job_back_and_exits(
    processes: Processes, user: Any, password: str
) -> None:
    web = processes.runserver("web", "--noworker")
    worker = processes.runworker("worker", "compute", JOBS_SHUTDOWN_GRACE="1")
    client = login(web.url, user.username, password)
    job_id = enqueue(client, "sleeps_in_c", 300)
    job_when(job_id, "running")
    worker.signal(signal.SIGTERM)
    # Long before the task's 300 s sleep returns.
    assert worker.popen.wait(20) == 0, worker.output()
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts, job.worker_ids) == ("queued", 0, [])

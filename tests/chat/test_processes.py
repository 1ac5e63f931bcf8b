"""The chat across real processes: two daphne servers and two `chat-messages` workers on
PostgreSQL and Redis, clients on both servers; a worker killed while messages flow."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from channels.db import database_sync_to_async

from chat.models import Message, Presence
from tests.clients import connect_ws, receive_until
from tests.jobs import start_redis
from tests.processes import Processes, login, wait_for
from workers.models import Job

pytestmark = [pytest.mark.redis, pytest.mark.slow]

CHAT_ENV = {
    "CHAT_RATE_LIMIT": "1000",
    "CHAT_PRESENCE_BATCH": "0.1",
    "CHAT_PRESENCE_HEARTBEAT": "0.5",
    "CHAT_PRESENCE_TTL": "3",
    "CHAT_GAP_WAIT": "0.5",
}


def start_servers(processes: Processes, **env: str) -> tuple[Any, Any]:
    env = {**CHAT_ENV, **env}
    return processes.daphne("server-a", **env), processes.daphne("server-b", **env)


async def send(ws: Any, body: str, client_id: str) -> None:
    await ws.send(json.dumps({"type": "chat.message", "body": body, "client_id": client_id}))


async def collect_messages(ws: Any, count: int, timeout: float) -> list[dict[str, Any]]:
    """chat.message frames (and the history's) until `count` distinct seqs have arrived."""
    messages: list[dict[str, Any]] = []

    def enough(frame: dict[str, Any]) -> bool:
        if frame["type"] == "chat.message":
            messages.append(frame)
        elif frame["type"] == "chat.history":
            messages.extend(frame["messages"])
        return len(messages) >= count

    await receive_until(ws, enough, timeout)
    return messages


def test_clients_on_two_servers_see_the_same_messages_in_the_same_order(
    processes: Processes, user: Any, other_user: Any, password: str
) -> None:
    server_a, server_b = start_servers(processes)
    processes.runworker("worker-1", "chat-messages", **CHAT_ENV)
    processes.runworker("worker-2", "chat-messages", **CHAT_ENV)
    alice = login(server_a.url, user.username, password)
    bob = login(server_b.url, other_user.username, password)
    per_sender = 30

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        alice_ws = await connect_ws(server_a.url, "/ws/chat/general/", alice)
        bob_ws = await connect_ws(server_b.url, "/ws/chat/general/", bob)
        seen_by_alice = asyncio.create_task(collect_messages(alice_ws, 2 * per_sender, 60))
        seen_by_bob = asyncio.create_task(collect_messages(bob_ws, 2 * per_sender, 60))

        async def talk(ws: Any, name: str) -> None:
            for n in range(per_sender):
                await send(ws, f"{name} {n}", f"{name}-{n}")

        await asyncio.gather(talk(alice_ws, "alice"), talk(bob_ws, "bob"))
        result = await seen_by_alice, await seen_by_bob
        await asyncio.gather(alice_ws.close(), bob_ws.close())
        return result

    seen_by_alice, seen_by_bob = asyncio.run(scenario())
    assert [(m["seq"], m["id"]) for m in seen_by_alice] == [
        (m["seq"], m["id"]) for m in seen_by_bob
    ]
    assert [m["seq"] for m in seen_by_alice] == list(range(1, 2 * per_sender + 1))
    for name in ["alice", "bob"]:
        own = [m["body"] for m in seen_by_alice if m["author"] == name]
        assert own == [f"{name} {n}" for n in range(per_sender)], f"{name}'s order changed"
    jobs = Job.objects.filter(channel="chat-messages")
    wait_for(lambda: not jobs.exclude(status="succeeded").exists(), 30, "the jobs to finish")
    workers = {worker_id.split(":")[1] for job in jobs for worker_id in job.worker_ids}
    assert len(workers) == 2, f"one worker did all the work: {workers}"


def test_killing_a_worker_while_messages_flow_loses_nothing_acknowledged(
    processes: Processes, user: Any, other_user: Any, password: str
) -> None:
    server_a, server_b = start_servers(processes)
    doomed = processes.runworker("worker-1", "chat-messages", **CHAT_ENV)
    processes.runworker("worker-2", "chat-messages", **CHAT_ENV)
    alice = login(server_a.url, user.username, password)
    bob = login(server_b.url, other_user.username, password)
    total = 120
    answers: list[dict[str, Any]] = []

    async def scenario() -> tuple[set[str], list[dict[str, Any]]]:
        alice_ws = await connect_ws(server_a.url, "/ws/chat/general/", alice)
        bob_ws = await connect_ws(server_b.url, "/ws/chat/general/", bob)
        accepted: set[str] = set()

        async def read_acks() -> None:
            async for raw in alice_ws:
                frame = json.loads(raw)
                if frame["type"] in {"chat.ack", "chat.error"}:
                    answers.append(frame)
                if frame["type"] == "chat.ack":
                    accepted.add(frame["client_id"])

        acks = asyncio.create_task(read_acks())
        seen_by_bob = asyncio.create_task(collect_messages(bob_ws, total, 90))
        for n in range(total):
            await send(alice_ws, f"message {n}", f"m-{n}")
            if n == total // 4:
                await asyncio.to_thread(doomed.kill)
            await asyncio.sleep(0.02)
        messages = await seen_by_bob
        acks.cancel()
        await asyncio.gather(alice_ws.close(), bob_ws.close())
        return accepted, messages

    accepted, messages = asyncio.run(scenario())
    assert not doomed.alive()
    assert not [a for a in answers if a["type"] == "chat.error"]
    assert len(accepted) == total
    assert {m["client_id"] for m in messages} == accepted
    assert [m["seq"] for m in messages] == list(range(1, total + 1))
    assert [m["body"] for m in messages] == [f"message {n}" for n in range(total)]
    # The killed worker's batch may have gone out unmarked; a later run marks it (and repeats
    # it, which connections drop by seq).
    unmarked = Message.objects.filter(published_at__isnull=True)
    wait_for(lambda: not unmarked.exists(), 30, "every message to be marked published")


def test_presence_spans_servers_and_a_dead_server_s_users_leave(
    processes: Processes, user: Any, other_user: Any, password: str
) -> None:
    server_a, server_b = start_servers(processes)
    alice = login(server_a.url, user.username, password)
    bob = login(server_b.url, other_user.username, password)

    async def scenario() -> None:
        alice_ws = await connect_ws(server_a.url, "/ws/chat/general/", alice)
        await receive_until(alice_ws, lambda f: f.get("users") == ["alice"], 10)
        bob_ws = await connect_ws(server_b.url, "/ws/chat/general/", bob)
        first = await receive_until(bob_ws, lambda f: f["type"] == "chat.presence", 10)
        assert first[-1]["users"] == ["alice", "bob"]
        await receive_until(alice_ws, lambda f: "bob" in f.get("joined", []), 10)
        # Server B dies without a word: bob's connection row stays until it expires.
        await asyncio.to_thread(server_b.kill)
        # Nobody told the room: bob's row stays until it expires...
        assert await database_sync_to_async(
            Presence.objects.filter(user__username="bob").exists
        )(), "bob's row went with his server"
        await receive_until(alice_ws, lambda f: "bob" in f.get("left", []), 15)
        # ... and then it is pruned, and the room hears of it.
        assert not await database_sync_to_async(
            Presence.objects.filter(user__username="bob").exists
        )()
        await alice_ws.close()

    asyncio.run(scenario())


def test_typing_on_one_server_is_seen_on_the_other(
    processes: Processes, user: Any, other_user: Any, password: str
) -> None:
    server_a, server_b = start_servers(processes)
    alice = login(server_a.url, user.username, password)
    bob = login(server_b.url, other_user.username, password)

    async def scenario() -> list[dict[str, Any]]:
        alice_ws = await connect_ws(server_a.url, "/ws/chat/general/", alice)
        bob_ws = await connect_ws(server_b.url, "/ws/chat/general/", bob)
        await receive_until(alice_ws, lambda f: "bob" in f.get("joined", []), 10)
        await alice_ws.send(json.dumps({"type": "chat.typing"}))
        frames = await receive_until(bob_ws, lambda f: f["type"] == "chat.typing", 10)
        await asyncio.gather(alice_ws.close(), bob_ws.close())
        return frames

    assert asyncio.run(scenario())[-1] == {"type": "chat.typing", "users": ["alice"]}


def test_the_rate_limit_is_shared_by_all_servers(
    processes: Processes, user: Any, password: str
) -> None:
    server_a, server_b = start_servers(processes, CHAT_RATE_LIMIT="4", CHAT_RATE_WINDOW="3600")
    client_a = login(server_a.url, user.username, password)
    client_b = login(server_b.url, user.username, password)

    async def scenario() -> list[dict[str, Any]]:
        ws_a = await connect_ws(server_a.url, "/ws/chat/general/", client_a)
        ws_b = await connect_ws(server_b.url, "/ws/chat/general/", client_b)
        answers = []
        for ws, prefix in [(ws_a, "a"), (ws_b, "b")]:
            for n in range(3):
                await send(ws, "hi", f"{prefix}-{n}")
                frames = await receive_until(
                    ws, lambda f: f["type"] in {"chat.ack", "chat.error"}, 10
                )
                answers.append(frames[-1])
        await asyncio.gather(ws_a.close(), ws_b.close())
        return answers

    answers = asyncio.run(scenario())
    assert [a["type"] for a in answers] == ["chat.ack"] * 4 + ["chat.error"] * 2
    assert {a["code"] for a in answers[4:]} == {"rate_limited"}
    assert Message.objects.count() == 4


def test_a_client_reconnecting_to_the_other_server_gets_exactly_what_it_missed(
    processes: Processes, user: Any, other_user: Any, password: str
) -> None:
    server_a, server_b = start_servers(processes)
    processes.runworker("worker", "chat-messages", **CHAT_ENV)
    alice = login(server_a.url, user.username, password)
    bob_on_b = login(server_b.url, other_user.username, password)
    bob_on_a = login(server_a.url, other_user.username, password)

    async def scenario() -> list[dict[str, Any]]:
        alice_ws = await connect_ws(server_a.url, "/ws/chat/general/", alice)
        bob_ws = await connect_ws(server_b.url, "/ws/chat/general/", bob_on_b)
        for n in range(3):
            await send(alice_ws, f"seen {n}", f"seen-{n}")
        seen = await collect_messages(bob_ws, 3, 20)
        await bob_ws.close()
        for n in range(4):
            await send(alice_ws, f"missed {n}", f"missed-{n}")
        await collect_messages(alice_ws, 7, 20)
        bob_ws = await connect_ws(
            server_a.url, f"/ws/chat/general/?since={seen[-1]['seq']}", bob_on_a
        )
        replayed = await collect_messages(bob_ws, 4, 20)
        await send(alice_ws, "live again", "live")
        replayed += await collect_messages(bob_ws, 1, 20)
        await asyncio.gather(alice_ws.close(), bob_ws.close())
        return replayed

    replayed = asyncio.run(scenario())
    assert [(m["seq"], m["body"]) for m in replayed] == [
        (4, "missed 0"),
        (5, "missed 1"),
        (6, "missed 2"),
        (7, "missed 3"),
        (8, "live again"),
    ]


def test_a_real_client_sees_the_close_codes(processes: Processes, user: Any, password: str) -> None:
    server_a, _ = start_servers(processes)
    client = login(server_a.url, user.username, password)

    async def close_code(path: str, logged_in: bool) -> int:
        ws = await connect_ws(server_a.url, path, client if logged_in else None)
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None
        return int(closed.value.rcvd.code)

    async def scenario() -> None:
        assert await close_code("/ws/chat/general/", logged_in=False) == 4401
        assert await close_code("/ws/chat/no%20spaces/", logged_in=True) == 4400
        assert await close_code("/ws/chat/" + "x" * 65 + "/", logged_in=True) == 4400

    asyncio.run(scenario())


def test_messages_accepted_before_redis_restarts_empty_are_all_delivered(
    processes: Processes, user: Any, other_user: Any, password: str, tmp_path: Path
) -> None:
    # A Redis of this test's own, so that restarting it disturbs nothing else.
    redis_proc, port = start_redis(tmp_path)
    env = {**CHAT_ENV, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    server = processes.daphne("server", **env)
    alice = login(server.url, user.username, password)
    bob = login(server.url, other_user.username, password)

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        nonlocal redis_proc
        alice_ws = await connect_ws(server.url, "/ws/chat/general/", alice)
        for n in range(5):
            await send(alice_ws, f"before the restart {n}", f"b-{n}")
            await receive_until(alice_ws, lambda f: f["type"] == "chat.ack", 10)
        # No worker runs yet. Redis goes away with the five jobs' wake-ups and the room's
        # group, and comes back empty.
        redis_proc.terminate()
        await asyncio.to_thread(redis_proc.wait, 10)
        await asyncio.sleep(1)
        redis_proc, _ = await asyncio.to_thread(start_redis, tmp_path, port)
        # The recovery sweep finds the queued jobs whose wake-ups were lost.
        await asyncio.to_thread(processes.runworker, "worker", "chat-messages", **env)
        # Alice's connection held on through all this, and gets the messages live.
        seen_by_alice = await collect_messages(alice_ws, 5, 30)
        bob_ws = await connect_ws(server.url, "/ws/chat/general/", bob)
        seen_by_bob = await collect_messages(bob_ws, 5, 10)
        await asyncio.gather(alice_ws.close(), bob_ws.close())
        return seen_by_alice, seen_by_bob

    try:
        seen_by_alice, seen_by_bob = asyncio.run(scenario())
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
    expected = [(n + 1, f"before the restart {n}") for n in range(5)]
    assert [(m["seq"], m["body"]) for m in seen_by_alice] == expected
    assert [(m["seq"], m["body"]) for m in seen_by_bob] == expected

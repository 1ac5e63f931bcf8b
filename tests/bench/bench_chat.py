"""Chat fan-out: N websocket clients in one room on daphne + Redis (+ PostgreSQL), beside the
Channels tutorial's chat.

Stacks, measured in the same run, each with N clients on one daphne process and the same
channels-redis layer:

* chat: the whole pipeline. A client sends `chat.message`; the consumer counts it against the
  rate limit (Redis) and stores it with its job (PostgreSQL); a `chat-messages` worker numbers
  it and broadcasts it to the room's group; the room's hub in daphne puts it in order and
  sends it to every connection.
* tutorial: the chat of the Channels tutorial (tests/bench/tutorial_chat.py): an async
  consumer, one group per room, one `group_send` per message, a channel per connection; it
  stores, numbers and checks nothing.
* bare fan-out, a channel per connection: the floor of Channels' usual pattern. The benchmark
  calls channels-redis `group_send` with a ready-made frame, to a group of 1,000 channels, one
  per connection; a stock consumer forwards it.
* bare fan-out, a channel per process: the floor of the hub's pattern. The same `group_send`
  reaches one channel in daphne, whose reader forwards the frame to the 1,000 connections.
  Its consumer only accepts: its reconnect storm is the floor of any storm on this machine
  (daphne's handshakes and the clients').

The bare fan-outs run on this project's daphne (project/server.py), as the chat does.

For each: the latency from send until *every* client has the message (p50/p99 over messages
sent at a light, paced rate), and the sustained rate of a burst (messages / time from the first
send until the last client has the last message). Also: daphne's memory per idle connection
(its RSS growth over the connection storm, divided by N); a reconnect storm (every client
drops and reconnects at once, the chat's with `?since=` its last seq, until every one is back
with its history; daphne's CPU time over it beside); and, for the chat, the paced latency
again while 100 clients send typing notices, beside the paced latency without. Loopback
only; bounded in clients, messages and time. The default run (300 clients, chat and
tutorial) takes two or three minutes; the full figures:

    .venv/bin/python -m tests.bench.bench_chat                      # 300 clients
    .venv/bin/python -m tests.bench.bench_chat --clients 1000       # the delivery figures
    .venv/bin/python -m tests.bench.bench_chat --clients 5000 --stacks chat,tutorial --burst 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tests.bench import (
    PRODUCTION_ENV,
    ROOT,
    BenchProcess,
    bench_database,
    flush_redis,
    out,
    percentile,
    redis_url,
    setup_django,
    status_kib,
    wait_for,
)
from tests.processes import free_port

LAYER_DB = 5
ROOM = "bench"
FANOUT_GROUP = "bench.fanout"
CLIENT_PROCESSES = 4
SENDERS = 10
# Paced well under what the slowest stack can fan out to 1,000 clients, so that the latency
# is the pipeline's, not a queue's.
PACED_MESSAGES = 60
PACED_RATE = 3.0
PHASE_TIMEOUT = 90.0
CONNECT_TIMEOUT = 300.0
# Typing notices during the second paced phase: this many clients, each one a second (the
# server passes one per connection per CHAT_TYPING_INTERVAL).
TYPERS = 100
# Connection attempts per client before the benchmark gives up.
ATTEMPTS = 8
TYPING_EVERY = 1.0


# The bare fan-outs' server side: daphne serves `tests.bench.bench_chat:<name>_application`.


class FanoutApplication:
    """An ASGI app whose websockets get what is sent to the group FANOUT_GROUP."""

    def __init__(self, per_process: bool) -> None:
        self.per_process = per_process
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.app is None:
            self.app = build_fanout_app(self.per_process)
        await self.app(scope, receive, send)


def build_fanout_app(per_process: bool) -> Any:
    import django

    django.setup()
    from project.server import tune_daphne

    # The floors of this project's daphne (the chat's server), not of the stock one.
    tune_daphne()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.layers import get_channel_layer
    from channels.routing import ProtocolTypeRouter

    class PerConnection(AsyncWebsocketConsumer):
        """Channels' usual pattern: each connection's channel is in the group."""

        async def connect(self) -> None:
            await self.channel_layer.group_add(FANOUT_GROUP, self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard(FANOUT_GROUP, self.channel_name)

        async def bench_message(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["text"])

    members: set[Any] = set()
    reader: list[asyncio.Task[None]] = []

    async def forward() -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(FANOUT_GROUP, channel)
        while True:
            text = (await layer.receive(channel))["text"]
            for member in list(members):
                await member.send(text_data=text)

    class PerProcess(AsyncWebsocketConsumer):
        """The hub's pattern: one channel per process, whose reader forwards to everyone."""

        channel_layer_alias = None

        async def connect(self) -> None:
            if not reader:
                reader.append(asyncio.create_task(forward()))
                await asyncio.sleep(0.5)  # the reader is in the group before anyone counts
            members.add(self)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            members.discard(self)

    consumer = PerProcess if per_process else PerConnection
    return ProtocolTypeRouter({"websocket": consumer.as_asgi()})


fanout_application = FanoutApplication(per_process=False)
process_fanout_application = FanoutApplication(per_process=True)


# Client processes: each holds a share of the websockets and records what arrives.


@dataclass
class ClientConfig:
    url: str
    origin: str
    cookies: list[str]  # one per client; "" for none
    chat: bool  # wait for the chat's history and presence before counting as ready
    tutorial: bool = False  # the tutorial's frames: {"message": ...}


def client_process(conn: Connection, config: ClientConfig) -> None:
    asyncio.run(ClientSide(conn, config).run())


class ClientSide:
    def __init__(self, conn: Connection, config: ClientConfig) -> None:
        self.conn = conn
        self.config = config
        self.sockets: list[Any] = []
        # message key -> [deliveries, max latency, sum of latencies]
        self.received: dict[str, list[float]] = {}
        # The highest seq each socket has: a reconnect asks for what came after it.
        self.highest: list[int] = []
        self.readers: list[asyncio.Task[None]] = []
        self.typers: list[asyncio.Task[None]] = []
        self.resets = 0

    async def open_one(self, index: int, gate: asyncio.Semaphore, since: bool = False) -> Any:
        import websockets

        cookie = self.config.cookies[index]
        headers = {"Cookie": cookie} if cookie else {}
        url = self.config.url
        if since:
            url += f"?since={self.highest[index]}"
        async with gate:
            for attempt in range(ATTEMPTS):
                try:
                    ws = await websockets.connect(
                        url,
                        origin=websockets.Origin(self.config.origin),
                        additional_headers=headers,
                        compression=None,
                        ping_interval=None,
                        max_size=2**22,
                        open_timeout=60,
                    )
                    break
                except (OSError, websockets.exceptions.InvalidHandshake, TimeoutError):
                    # A loaded server drops a handshake it cannot answer within its
                    # timeout: the client tries again, as the page does (the time counts).
                    if attempt == ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(0.5 + attempt)
            if self.config.chat:
                await self.initial_frames(ws, index)
            # Read from now on: a socket left unread while the others connect stops answering
            # daphne's pings once its receive queue is full, and daphne drops it after 30 s.
            self.readers.append(asyncio.create_task(self.read(ws, index)))
            return ws

    async def run(self) -> None:
        # Not measured: a few at a time, so that a loaded machine keeps within daphne's
        # handshake timeout (5 s).
        gate = asyncio.Semaphore(3)
        self.highest = [0] * len(self.config.cookies)
        self.sockets = list(
            await asyncio.gather(*(self.open_one(i, gate) for i in range(len(self.highest))))
        )
        self.conn.send(("ready", len(self.sockets)))
        loop = asyncio.get_running_loop()
        sending: set[asyncio.Task[None]] = set()
        while True:
            command = await loop.run_in_executor(None, self.conn.recv)
            if command[0] == "send":
                _, tag, count, rate = command
                # In the background: progress questions are answered while it sends.
                task = asyncio.create_task(self.send_chat(tag, count, rate))
                sending.add(task)
                task.add_done_callback(sending.discard)
            elif command[0] == "typing":
                for typer in self.typers:
                    typer.cancel()
                self.typers = [
                    asyncio.create_task(self.type(ws)) for ws in self.sockets[: command[1]]
                ]
                self.conn.send(("typing", len(self.typers)))
            elif command[0] == "reconnect":
                self.conn.send(("reconnect", await self.reconnect()))
            elif command[0] == "progress":
                self.conn.send(("progress", {k: int(v[0]) for k, v in self.received.items()}))
            elif command[0] == "results":
                self.conn.send(("results", self.received))
            elif command[0] == "stop":
                break
        for task in [*self.readers, *self.typers]:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        self.conn.send(("stopped", 0))

    async def reconnect(self) -> tuple[float, int]:
        """Drop every socket, then reconnect them all at once (the chat's with `?since=`);
        returns the seconds until the last is back with its history, and how many resets."""
        for task in self.readers:
            task.cancel()
        self.readers = []
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        self.resets = 0
        began = time.monotonic()
        gate = asyncio.Semaphore(1000)
        self.sockets = list(
            await asyncio.gather(
                *(self.open_one(i, gate, since=self.config.chat) for i in range(len(self.highest)))
            )
        )
        elapsed = time.monotonic() - began
        return elapsed, self.resets

    async def type(self, ws: Any) -> None:
        frame = json.dumps({"type": "chat.typing"})
        await asyncio.sleep(TYPING_EVERY * (hash(id(ws)) % 1000) / 1000)
        while True:
            with contextlib.suppress(Exception):
                await ws.send(frame)
            await asyncio.sleep(TYPING_EVERY)

    async def initial_frames(self, ws: Any, index: int) -> None:
        seen: set[str] = set()
        while not {"chat.history", "chat.presence"} <= seen:
            frame = json.loads(await ws.recv())
            seen.add(frame["type"])
            if frame["type"] == "chat.history":
                self.resets += bool(frame.get("reset"))
                for item in [*frame["messages"], *frame.get("updates", [])]:
                    self.highest[index] = max(self.highest[index], item["seq"])

    async def read(self, ws: Any, index: int) -> None:
        import websockets

        received = self.received
        tutorial = self.config.tutorial
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            async for raw in ws:
                arrived = time.monotonic()
                frame = json.loads(raw)
                if tutorial:
                    body = frame["message"]
                elif frame.get("type") == "chat.message":
                    body = frame["body"]
                    self.highest[index] = max(self.highest[index], frame["seq"])
                else:
                    # Updates have seqs of the room's order too (acks have the sender's).
                    if frame.get("type") == "chat.update":
                        self.highest[index] = max(self.highest[index], frame["seq"])
                    continue
                key, sent_at = body.split(" ")
                latency = arrived - float(sent_at)
                entry = received.get(key)
                if entry is None:
                    received[key] = entry = [0, 0.0, 0.0]
                entry[0] += 1
                entry[1] = max(entry[1], latency)
                entry[2] += latency

    async def send_chat(self, tag: str, count: int, rate: float) -> None:
        senders = self.sockets[:SENDERS]
        interval = 1 / rate if rate else 0.0
        start = time.monotonic()
        for n in range(count):
            if interval:
                await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))
            body = f"{tag}-{n} {time.monotonic():.6f}"
            if self.config.tutorial:
                frame = {"message": body}
            else:
                frame = {"type": "chat.message", "body": body, "client_id": f"{tag}-{n}"}
            await senders[n % len(senders)].send(json.dumps(frame))


class Clients:
    """The client processes of one stack, driven from the benchmark process."""

    def __init__(
        self, url: str, origin: str, cookies: list[str], chat: bool, tutorial: bool = False
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        shares = [cookies[i::CLIENT_PROCESSES] for i in range(CLIENT_PROCESSES)]
        for share in shares:
            parent, child = context.Pipe()
            process = context.Process(
                target=client_process,
                args=(
                    child,
                    ClientConfig(
                        url=url, origin=origin, cookies=share, chat=chat, tutorial=tutorial
                    ),
                ),
                daemon=True,
            )
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)
        self.count = len(cookies)

    def expect(self, pipe: Connection, kind: str, timeout: float) -> Any:
        if not pipe.poll(timeout):
            raise TimeoutError(f"no {kind!r} from a client process within {timeout:g} s")
        got, value = pipe.recv()
        if got != kind:
            raise RuntimeError(f"expected {kind!r} from a client process, got {got!r}")
        return value

    def wait_ready(self) -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT
        connected = sum(
            self.expect(pipe, "ready", max(1.0, deadline - time.monotonic())) for pipe in self.pipes
        )
        assert connected == self.count, (connected, self.count)

    def send_chat(self, tag: str, count: int, rate: float) -> None:
        self.pipes[0].send(("send", tag, count, rate))

    def typing(self, typers: int) -> int:
        """Start `typers` clients typing (0: stop them all); returns how many type."""
        share = -(-typers // len(self.pipes))
        for pipe in self.pipes:
            pipe.send(("typing", share))
        return sum(self.expect(pipe, "typing", 30) for pipe in self.pipes)

    def reconnect(self) -> tuple[float, int]:
        """Every client drops and reconnects at once: the seconds until the last is back
        (with its history, for the chat), and how many were told to start over."""
        for pipe in self.pipes:
            pipe.send(("reconnect",))
        back = [self.expect(pipe, "reconnect", CONNECT_TIMEOUT) for pipe in self.pipes]
        return max(seconds for seconds, _ in back), sum(resets for _, resets in back)

    def complete(self, keys: list[str]) -> int:
        """How many of `keys` every client has received."""
        totals: dict[str, int] = {}
        for pipe in self.pipes:
            pipe.send(("progress",))
        for pipe in self.pipes:
            for key, n in self.expect(pipe, "progress", 30).items():
                totals[key] = totals.get(key, 0) + n
        return sum(1 for key in keys if totals.get(key, 0) >= self.count)

    def results(self) -> dict[str, list[float]]:
        merged: dict[str, list[float]] = {}
        for pipe in self.pipes:
            pipe.send(("results",))
        for pipe in self.pipes:
            for key, (n, worst, total) in self.expect(pipe, "results", 60).items():
                entry = merged.setdefault(key, [0, 0.0, 0.0])
                entry[0] += n
                entry[1] = max(entry[1], worst)
                entry[2] += total
        return merged

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop",))
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.kill()


# Phases.


@dataclass
class Figures:
    p50: float
    p99: float
    delivered: int
    expected: int


def measure(
    clients: Clients, tag: str, count: int, start: Callable[[], None]
) -> tuple[dict[str, list[float]], float]:
    """Run one phase: `start` begins sending; wait until every client has every message.
    Returns each message's [deliveries, worst latency, latency sum], and the phase's time."""
    keys = [f"{tag}-{n}" for n in range(count)]
    began = time.monotonic()
    start()
    deadline = began + PHASE_TIMEOUT
    while clients.complete(keys) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - began
    results = {k: v for k, v in clients.results().items() if k.startswith(f"{tag}-")}
    return results, elapsed


def figures(results: dict[str, list[float]], count: int, clients: int) -> Figures:
    """p50/p99 over messages of the time until the last client had each one."""
    complete = [v for v in results.values() if v[0] >= clients]
    worst = [v[1] for v in complete] or [float("nan")]
    return Figures(
        p50=percentile(worst, 0.5) * 1000,
        p99=percentile(worst, 0.99) * 1000,
        delivered=len(complete),
        expected=count,
    )


@dataclass
class Outcome:
    """One stack's figures."""

    name: str
    paced: Figures
    burst: Figures
    burst_seconds: float
    # daphne's CPU time per message in the burst: less noisy than wall time on a shared box.
    daphne_cpu_ms: float
    # daphne's RSS growth per connection, once all are connected and idle.
    idle_kib: float
    # The paced phase again with TYPERS clients typing (the chat only).
    typed: Figures | None
    # Every client reconnecting at once: seconds until the last is back, and how many reset.
    storm_seconds: float | None
    storm_resets: int
    # daphne's CPU time over the storm: what its connects cost, whatever the clients cost.
    storm_cpu: float

    @property
    def rate(self) -> float:
        return self.burst.delivered / self.burst_seconds


def rss_kib(pid: int) -> int:
    """A process's resident memory (Linux); 0 once it is gone."""
    return status_kib(pid, "VmRSS", default=0)


# Each daphne's RSS once it listens, before any client connects.
RSS_AT_START: dict[int, int] = {}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> dict[int, float]:
    """The CPU time so far of each of this machine's PostgreSQL processes."""
    seconds: dict[int, float] = {}
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError, ValueError):
            if comm.read_text().strip() == "postgres":
                pid = int(comm.parent.name)
                seconds[pid] = cpu_seconds(pid)
    return seconds


def postgres_cpu_since(before: dict[int, float]) -> float:
    """PostgreSQL's CPU time since `before`, of the processes running now (daphne keeps its
    connections open: what a backend that ended meanwhile spent is not counted)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in postgres_cpu().items())


def run_stack(
    name: str,
    args: argparse.Namespace,
    clients: Clients,
    send: Callable[[str, int, float], None],
    settle: float,
    server: BenchProcess,
) -> Outcome:
    """Connect the clients (and weigh them idle), then the paced phase, the paced phase with
    typing (the chat), the burst, and the reconnect storm."""
    typed: Figures | None = None
    storm: tuple[float, int] | None = None
    storm_cpu = 0.0
    pid = server.popen.pid
    try:
        started = time.monotonic()
        clients.wait_ready()
        out(f"{name}: {clients.count} clients connected in {time.monotonic() - started:.1f} s")
        time.sleep(settle)
        idle_kib = (rss_kib(pid) - RSS_AT_START.get(pid, 0)) / clients.count
        out(f"{name}: {idle_kib:.1f} KiB per idle connection")
        paced, _ = measure(
            clients, "paced", PACED_MESSAGES, lambda: send("paced", PACED_MESSAGES, PACED_RATE)
        )
        if name == "chat" and args.typers:
            typers = clients.typing(min(args.typers, clients.count))
            time.sleep(2)
            typed_results, _ = measure(
                clients, "typed", PACED_MESSAGES, lambda: send("typed", PACED_MESSAGES, PACED_RATE)
            )
            clients.typing(0)
            typed = figures(typed_results, PACED_MESSAGES, clients.count)
            out(
                f"{name}: with {typers} typing, paced p50 {typed.p50:.1f} ms p99 {typed.p99:.1f} ms"
            )
            time.sleep(2)
        cpu_before = cpu_seconds(pid)
        burst, seconds = measure(clients, "burst", args.burst, lambda: send("burst", args.burst, 0))
        cpu = cpu_seconds(pid) - cpu_before
        time.sleep(1)
        out(f"{name}: the reconnect storm begins (daphne's pid {pid})")
        cpu_before, postgres_before = cpu_seconds(pid), postgres_cpu()
        storm = clients.reconnect()
        storm_cpu = cpu_seconds(pid) - cpu_before
        out(
            f"{name}: {clients.count} reconnected at once in {storm[0]:.1f} s "
            f"(daphne's CPU {storm_cpu:.1f} s, PostgreSQL's "
            f"{postgres_cpu_since(postgres_before):.1f} s)"
        )
    finally:
        clients.close()
    outcome = Outcome(
        name=name,
        paced=figures(paced, PACED_MESSAGES, clients.count),
        burst=figures(burst, args.burst, clients.count),
        burst_seconds=seconds,
        daphne_cpu_ms=cpu * 1000 / max(1, len(burst)),
        idle_kib=idle_kib,
        typed=typed,
        storm_seconds=storm[0] if storm else None,
        storm_resets=storm[1] if storm else 0,
        storm_cpu=storm_cpu,
    )
    slowest = sorted(paced.items(), key=lambda item: -item[1][1])[:3]
    out(
        f"{name}: paced p50 {outcome.paced.p50:.1f} ms p99 {outcome.paced.p99:.1f} ms "
        f"(slowest: {', '.join(f'{k} {v[1] * 1000:.0f} ms' for k, v in slowest)}); "
        f"burst {outcome.rate:.1f} msgs/s"
    )
    return outcome


def group_sender() -> Callable[[str, int, float], None]:
    """Sends through channels-redis `group_send` from this process, as a worker would."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()

    async def send(tag: str, count: int, rate: float) -> None:
        interval = 1 / rate if rate else 0.0
        start = time.monotonic()
        for n in range(count):
            if interval:
                await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))
            # A frame shaped like the chat's, encoded once: the consumers only forward it.
            frame = {
                "type": "chat.message",
                "id": n,
                "seq": n + 1,
                "room": ROOM,
                "author": "bench-0000",
                "body": f"{tag}-{n} {time.monotonic():.6f}",
                "created_at": "2026-01-01T00:00:00+00:00",
                "client_id": f"{tag}-{n}",
            }
            await layer.group_send(
                FANOUT_GROUP, {"type": "bench.message", "text": json.dumps(frame)}
            )

    return async_to_sync(send)


# Set-up: users with sessions, and the processes.


def make_users(count: int) -> list[str]:
    """`count` users, each with a logged-in session; returns their session cookies."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    user_model = get_user_model()
    password = make_password(get_random_string(20))
    users = user_model.objects.bulk_create(
        [user_model(username=f"bench-{n:04d}", password=password) for n in range(count)]
    )
    store = SessionStore()
    sessions = []
    for user in users:
        data = {
            "_auth_user_id": str(user.pk),
            "_auth_user_backend": "project.auth.UserBackend",
            "_auth_user_hash": user.get_session_auth_hash(),
        }
        sessions.append(
            Session(
                session_key=get_random_string(32),
                session_data=store.encode(data),
                expire_date=timezone.now() + timedelta(days=1),
            )
        )
    Session.objects.bulk_create(sessions)
    return [f"sessionid={s.session_key}" for s in sessions]


def wait_listening(process: BenchProcess, port: int) -> None:
    def listening() -> bool:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.output()[-3000:]}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 60, f"{process.name} to listen")


def daphne(name: str, app: str, env: dict[str, str], logs: Path) -> tuple[BenchProcess, int]:
    port = free_port()
    process = BenchProcess(
        name,
        # The listen backlog, handshake timeout and (no) access log of
        # deploy/systemd/pipeline-web.service, for every stack.
        [
            sys.executable,
            "-m",
            "daphne",
            "-e",
            f"tcp:port={port}:interface=127.0.0.1:backlog=4096",
            "--websocket_connect_timeout",
            "30",
            "--verbosity",
            "0",
            app,
        ],
        env,
        logs / f"{name}.log",
    )
    wait_listening(process, port)
    RSS_AT_START[process.popen.pid] = rss_kib(process.popen.pid)
    return process, port


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_chat")
    parser.add_argument("--clients", type=int, default=300, help="websockets in the room")
    parser.add_argument("--burst", type=int, default=100, help="messages in the burst phase")
    parser.add_argument(
        "--typers", type=int, default=TYPERS, help="clients typing in the chat's typing phase"
    )
    parser.add_argument(
        "--stacks",
        default="chat,tutorial",
        help="which to measure: chat, tutorial (the Channels tutorial's chat), connection "
        "(bare, channel per connection), process (bare, channel per process)",
    )
    parser.add_argument(
        "--database", default="pipeline_bench_chat", help="PostgreSQL database to make and drop"
    )
    parser.add_argument("--redis-db", type=int, default=LAYER_DB, help="Redis database to flush")
    args = parser.parse_args(argv)
    # A stopped run (timeout, Ctrl-C) still stops its daphne and workers (the finally blocks):
    # left running, a worker would take the next run's jobs from the same Redis database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stacks = set(args.stacks.split(","))
    if not 10 <= args.clients <= 5000 or not 10 <= args.burst <= 900:
        # Bounded: a channels-redis channel holds 1,000 messages; a bigger burst would drop.
        parser.error("--clients must be 10..5000 and --burst 10..900")

    layer = redis_url(args.redis_db)
    flush_redis(layer)
    logs = ROOT / "var" / "bench-chat"
    logs.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    with bench_database(args.database) as database:
        setup_django(database=database, redis=layer)
        cookies = make_users(args.clients)
        env = {
            **os.environ,
            **PRODUCTION_ENV,
            "DATABASE_URL": database,
            "REDIS_URL": layer,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            # The pipeline is measured, not the limiter's verdict (its Redis round trip stays).
            "CHAT_RATE_LIMIT": "1000000",
            "PYTHONUNBUFFERED": "1",
        }
        started: list[BenchProcess] = []
        try:
            if "chat" in stacks:
                outcomes.append(run_chat(args, cookies, env, logs))
            if "tutorial" in stacks:
                server, port = daphne(
                    "daphne-tutorial", "tests.bench.tutorial_chat:application", env, logs
                )
                started.append(server)
                clients = Clients(
                    f"ws://127.0.0.1:{port}/ws/chat/{ROOM}/",
                    f"http://127.0.0.1:{port}",
                    cookies,
                    chat=False,
                    tutorial=True,
                )
                outcomes.append(run_stack("tutorial", args, clients, clients.send_chat, 1, server))
                server.stop()
            send = group_sender()
            for key, name, app in [
                ("connection", "bare, channel per connection", "fanout_application"),
                ("process", "bare, channel per process", "process_fanout_application"),
            ]:
                if key not in stacks:
                    continue
                server, port = daphne(f"daphne-{app}", f"tests.bench.bench_chat:{app}", env, logs)
                started.append(server)
                clients = Clients(
                    f"ws://127.0.0.1:{port}/",
                    f"http://127.0.0.1:{port}",
                    [""] * args.clients,
                    False,
                )
                outcomes.append(run_stack(name, args, clients, send, settle=1, server=server))
                server.stop()
        finally:
            for process in started:
                process.stop()
    report(args, outcomes)


def run_chat(
    args: argparse.Namespace, cookies: list[str], env: dict[str, str], logs: Path
) -> Outcome:
    """The chat's stack: daphne with the project, and two `chat-messages` workers."""
    started: list[BenchProcess] = []
    try:
        server, port = daphne("daphne-chat", "project.asgi:application", env, logs)
        started.append(server)
        for n in (1, 2):
            worker = BenchProcess(
                f"worker-{n}",
                [sys.executable, "manage.py", "runworker", "chat-messages"],
                env,
                logs / f"worker-{n}.log",
            )
            started.append(worker)
            worker.wait_for_output("listening on channels", 60)
        clients = Clients(
            f"ws://127.0.0.1:{port}/ws/chat/{ROOM}/", f"http://127.0.0.1:{port}", cookies, True
        )
        # Settle: the last presence batches of the connection storm go out first.
        return run_stack("chat", args, clients, clients.send_chat, settle=3, server=server)
    finally:
        for process in started:
            process.stop()


def report(args: argparse.Namespace, outcomes: list[Outcome]) -> None:
    out()
    out(
        f"{args.clients} websocket clients in one room, one daphne process, channels-redis, "
        f"{os.cpu_count()} CPUs (shared with the clients, Redis and PostgreSQL)"
    )
    out(
        "latency: from send until every client has the message; "
        f"paced: {PACED_MESSAGES} messages at {PACED_RATE:g}/s; burst: {args.burst} at once"
    )
    out()
    columns = ["paced p50", "paced p99", "burst msg/s", "burst p50", "burst p99", "daphne CPU/msg"]
    out(f"{'':31}" + "".join(f"{c:>15}" for c in columns))
    for o in outcomes:
        cells = [
            f"{o.paced.p50:.1f} ms",
            f"{o.paced.p99:.1f} ms",
            f"{o.rate:.1f}",
            f"{o.burst.p50:.0f} ms",
            f"{o.burst.p99:.0f} ms",
            f"{o.daphne_cpu_ms:.1f} ms",
        ]
        out(f"{o.name:31}" + "".join(f"{c:>15}" for c in cells))
        for phase, f in [("paced", o.paced), ("burst", o.burst)]:
            if f.delivered < f.expected:
                out(f"  INCOMPLETE {phase}: {f.delivered}/{f.expected} reached every client")
    chats = [o for o in outcomes if o.name == "chat"]
    for chat, floor in [(c, f) for c in chats for f in outcomes if f is not c]:
        ratios = [
            chat.paced.p50 / floor.paced.p50,
            chat.paced.p99 / floor.paced.p99,
            chat.rate / floor.rate,
            chat.burst.p50 / floor.burst.p50,
            chat.burst.p99 / floor.burst.p99,
            chat.daphne_cpu_ms / floor.daphne_cpu_ms,
        ]
        label = "chat / " + floor.name.removeprefix("bare, ")
        out(f"{label:31}" + "".join(f"{r:>14.2f}x" for r in ratios))
    out()
    columns = ["KiB/idle conn", "storm s", "storm CPU s", "storm resets", "typing p99"]
    out(f"{'':31}" + "".join(f"{c:>15}" for c in columns))
    for o in outcomes:
        stormed = o.storm_seconds is not None
        cells = [
            f"{o.idle_kib:.1f}",
            f"{o.storm_seconds:.1f}" if stormed else "-",
            f"{o.storm_cpu:.1f}" if stormed else "-",
            str(o.storm_resets) if stormed else "-",
            f"{o.typed.p99:.1f} ms" if o.typed is not None else "-",
        ]
        out(f"{o.name:31}" + "".join(f"{c:>15}" for c in cells))
    for o in outcomes:
        if o.typed is not None and o.paced.p99 > 0:
            rise = (o.typed.p99 / o.paced.p99 - 1) * 100
            out(
                f"{o.name}: paced p99 {o.paced.p99:.1f} ms without typing, {o.typed.p99:.1f} ms "
                f"with typing ({rise:+.0f} %; the target is at most +20 %)"
            )
    tutorials = [o for o in outcomes if o.name == "tutorial"]
    for chat, tutorial in [(c, t) for c in chats for t in tutorials]:
        out(
            f"chat p99 / tutorial p99: paced {chat.paced.p99 / tutorial.paced.p99:.2f}x, "
            f"burst {chat.burst.p99 / tutorial.burst.p99:.2f}x (the target is at most 0.1x)"
        )


if __name__ == "__main__":
    main()

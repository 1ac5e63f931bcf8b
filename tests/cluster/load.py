"""Twelve users of the site for the length of a fault: each uploads a picture now and then,
polls its latest upload (as the page does) and chats in one room, through the load balancer,
each from an address of its own. Bounded in count and in time. Afterwards, `settle()` waits
for what the site accepted and `figures()` says what became of it: uploads accepted, done and
lost; chat messages accepted (acknowledged to their sender), delivered to every member and
lost; the requests that failed, and when.

A member that loses its websocket reconnects with `?since=<last seq it has>` and sends again,
with the same client_id, what was not acknowledged: as the page does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from tests.cluster.bed import CLIENT_ADDRESSES, SITE, Cluster
from tests.media_tasks.images import photo_like

ROOM = "load"
# Each user, at most: one upload every UPLOAD_EVERY s and one message every CHAT_EVERY s,
# for at most DURATION s.
UPLOAD_EVERY = 8.0
POLL_EVERY = 2.0
CHAT_EVERY = 3.0
MAX_UPLOADS = 20
MAX_MESSAGES = 60
DURATION = 180.0
# A member's websocket is taken for dead after this long without an answer to its ping
# (a frozen web host answers nothing, and nothing closes the connection).
PING_INTERVAL = 2.0
PING_TIMEOUT = 4.0


@dataclass
class Failure:
    at: float
    what: str
    status: int | str


@dataclass
class Answer:
    """A request that succeeded: when it was sent and how long its answer took."""

    sent: float
    took: float


@dataclass
class Member:
    """One user: an HTTP client and a chat websocket, and what each has seen."""

    name: str
    cookies: dict[str, str]
    csrf: str
    source: str
    uploads: list[int] = field(default_factory=list)
    # client_id -> message id, for the messages this user sent that the site acknowledged.
    acked: dict[str, int] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    sent: int = 0
    # Every chat message received: id by seq, in the order received.
    received: dict[int, int] = field(default_factory=dict)
    out_of_order: int = 0
    duplicates: int = 0
    cursor: int = 0
    reconnects: int = 0
    resets: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self, message: dict[str, Any], *, reset: bool = False) -> None:
        seq, message_id = int(message["seq"]), int(message["id"])
        if seq in self.received:
            # A reset (more missed than the replay holds) sends the latest again, on purpose.
            self.duplicates += not reset
            return
        if reset:
            self.received[seq] = message_id
            self.cursor = max(self.cursor, seq)
            return
        if seq <= self.cursor:
            self.out_of_order += 1
        self.received[seq] = message_id
        self.cursor = max(self.cursor, seq)


@dataclass
class Figures:
    uploads_accepted: int
    uploads_done: int
    messages_accepted: int
    messages_delivered: int
    failed: list[Failure]
    out_of_order: int
    duplicates: int
    reconnects: int

    @property
    def uploads_lost(self) -> int:
        return self.uploads_accepted - self.uploads_done

    @property
    def messages_lost(self) -> int:
        return self.messages_accepted - self.messages_delivered

    def failures(self, since: float) -> str:
        """The failed requests, by kind, and the window they fall in (s after `since`)."""
        if not self.failed:
            return "0 failed requests"
        kinds: dict[str, int] = {}
        for failure in self.failed:
            key = f"{failure.what} {failure.status}"
            kinds[key] = kinds.get(key, 0) + 1
        first = min(f.at for f in self.failed) - since
        last = max(f.at for f in self.failed) - since
        shown = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        return f"{len(self.failed)} failed requests ({shown}) between {first:.1f} and {last:.1f} s"

    def line(self, since: float) -> str:
        return (
            f"uploads accepted {self.uploads_accepted}, done {self.uploads_done}, "
            f"lost {self.uploads_lost}; chat messages accepted {self.messages_accepted}, "
            f"delivered to every member {self.messages_delivered}, lost {self.messages_lost} "
            f"(out of order {self.out_of_order}, twice {self.duplicates}, reconnects "
            f"{self.reconnects}); {self.failures(since)}"
        )


class Load:
    """The users' traffic, in a thread of its own (an asyncio loop) from `start()` to
    `stop()`."""

    def __init__(self, bed: Cluster, users: list[tuple[str, str]]) -> None:
        self.bed = bed
        self.members: list[Member] = []
        for (name, password), source in zip(users, CLIENT_ADDRESSES, strict=True):
            client = bed.client(name, password, source=source)
            cookies = dict(client.cookies.items())
            client.close()
            self.members.append(Member(name, cookies, cookies["csrftoken"], source))
        self.picture = photo_like(320, 240, seed=7)
        self.failed: list[Failure] = []
        self.answers: list[Answer] = []
        self.running = threading.Event()
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.error: BaseException | None = None

    # --- Running ------------------------------------------------------------------------

    def start(self) -> None:
        started = threading.Event()

        def main() -> None:
            self.loop = asyncio.new_event_loop()
            try:
                self.loop.run_until_complete(self.run(started))
            except BaseException as error:
                self.error = error
                started.set()
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=main, name="cluster-load", daemon=True)
        self.thread.start()
        started.wait(120)
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Stop sending; the websockets stay open until `settle()` has its answer."""
        self.running.clear()

    def close(self) -> None:
        if self.loop is not None and self.stopping is not None and self.thread is not None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.stopping.set)
            self.thread.join(60)
        if self.error is not None:
            raise self.error

    async def run(self, started: threading.Event) -> None:
        self.stopping = asyncio.Event()
        for member in self.members:
            member.connected = asyncio.Event()
        self.running.set()
        chats = [asyncio.ensure_future(self.chat(member)) for member in self.members]
        # Every member is in the room before anyone says anything.
        await asyncio.wait_for(
            asyncio.gather(*(member.connected.wait() for member in self.members)), 60
        )
        began = time.monotonic()
        senders = [asyncio.ensure_future(self.use(member, began)) for member in self.members]
        started.set()
        await asyncio.gather(*senders)
        await self.stopping.wait()
        for task in chats:
            task.cancel()
        await asyncio.gather(*chats, return_exceptions=True)

    def http(self, member: Member) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"https://{self.bed.entry().address}",
            headers={"Host": SITE, "Referer": f"https://{SITE}/", "X-CSRFToken": member.csrf},
            cookies=member.cookies,
            timeout=20,
            # The bed's own self-signed certificate.
            transport=httpx.AsyncHTTPTransport(local_address=member.source, verify=False),
        )

    async def use(self, member: Member, began: float) -> None:
        """Upload, poll the latest upload, chat: until stopped or past the bounds."""
        # Spread over the first seconds, so that twelve users do not act in step.
        offset = self.members.index(member) / len(self.members)
        next_upload = next_message = time.monotonic() + offset * CHAT_EVERY
        async with self.http(member) as client:
            while self.running.is_set() and time.monotonic() - began < DURATION:
                now = time.monotonic()
                if now >= next_upload and len(member.uploads) < MAX_UPLOADS:
                    next_upload = now + UPLOAD_EVERY
                    await self.upload(client, member)
                elif member.uploads:
                    await self.request(client, "GET", f"/api/uploads/{member.uploads[-1]}/")
                if now >= next_message and member.sent < MAX_MESSAGES:
                    next_message = now + CHAT_EVERY
                    self.say(member)
                await asyncio.sleep(POLL_EVERY)

    async def request(
        self, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        sent = time.monotonic()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            self.failed.append(Failure(time.monotonic(), method, type(error).__name__))
            return None
        if response.status_code >= 500:
            self.failed.append(Failure(time.monotonic(), method, response.status_code))
            return None
        self.answers.append(Answer(sent, time.monotonic() - sent))
        return response

    async def upload(self, client: httpx.AsyncClient, member: Member) -> None:
        files = {"image": ("photo.jpg", self.picture, "image/jpeg")}
        response = await self.request(client, "POST", "/api/uploads/", files=files)
        if response is None:
            return
        if response.status_code != 202:
            self.failed.append(Failure(time.monotonic(), "POST", response.status_code))
            return
        member.uploads.append(int(response.json()["uploads"][0]["id"]))

    def say(self, member: Member) -> None:
        client_id = uuid.uuid4().hex
        member.sent += 1
        member.pending[client_id] = f"{member.name} says {member.sent}"

    async def chat(self, member: Member) -> None:
        """The member's websocket, again and again: sends what is pending, takes what comes."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        cookie = "; ".join(f"{k}={v}" for k, v in member.cookies.items())
        while True:
            since = f"?since={member.cursor}" if member.cursor else ""
            try:
                async with websockets.connect(
                    f"wss://{SITE}/ws/chat/{ROOM}/{since}",
                    host=self.bed.entry().address,
                    port=443,
                    ssl=context,
                    local_addr=(member.source, 0),
                    origin=websockets.Origin(f"https://{SITE}"),
                    additional_headers={"Cookie": cookie},
                    proxy=None,
                    ping_interval=PING_INTERVAL,
                    ping_timeout=PING_TIMEOUT,
                    open_timeout=10,
                ) as ws:
                    await self.converse(member, ws)
            except (OSError, TimeoutError, websockets.WebSocketException):
                member.reconnects += 1
                await asyncio.sleep(0.5)

    async def converse(self, member: Member, ws: Any) -> None:
        sent: set[str] = set()
        # Messages refused for now (the per-user rate), and when to send them again.
        held: dict[str, float] = {}
        while True:
            # What is not acknowledged yet goes (again) on each new connection.
            for client_id, body in list(member.pending.items()):
                if client_id not in sent and held.get(client_id, 0) <= time.monotonic():
                    sent.add(client_id)
                    await ws.send(
                        json.dumps({"type": "chat.message", "body": body, "client_id": client_id})
                    )
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            except TimeoutError:
                continue
            kind = frame.get("type")
            if kind == "chat.history":
                member.resets += bool(frame.get("reset"))
                for message in frame.get("messages", []):
                    member.take(message, reset=bool(frame.get("reset")))
                member.connected.set()
            elif kind == "chat.message":
                member.take(frame)
            elif kind == "chat.ack":
                client_id = frame["client_id"]
                if member.pending.pop(client_id, None) is not None or client_id in sent:
                    member.acked[client_id] = int(frame["id"])
            elif frame.get("client_id") in member.pending:
                # Refused (too many at once after a reconnect): again after the wait it names.
                sent.discard(frame["client_id"])
                held[frame["client_id"]] = time.monotonic() + float(frame.get("retry_after", 1))

    # --- Afterwards ---------------------------------------------------------------------

    def accepted_uploads(self) -> list[int]:
        return [n for member in self.members for n in member.uploads]

    def accepted_messages(self) -> set[int]:
        return {n for member in self.members for n in member.acked.values()}

    def delivered(self) -> set[int]:
        """The accepted messages that every member has received."""
        delivered = self.accepted_messages()
        for member in self.members:
            delivered &= set(member.received.values())
        return delivered

    def uploads_done(self) -> int:
        accepted = self.accepted_uploads()
        if not accepted:
            return 0
        ids = ",".join(str(n) for n in accepted)
        return int(
            self.bed.psql(
                "SELECT count(*) FROM media_tasks_upload u "  # noqa: S608 (ids)
                "JOIN workers_job t ON t.id = u.thumbnails_job_id "
                "JOIN workers_job a ON a.id = u.analysis_job_id "
                f"WHERE u.id IN ({ids}) AND t.status = 'succeeded' AND a.status = 'succeeded'"
            )
        )

    def settle(self, timeout: float) -> float:
        """Waits (up to `timeout`) until every accepted upload is done and every accepted
        message reached every member; returns how long that took. Then closes."""
        self.stop()
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline:
            pending = any(member.pending for member in self.members)
            if (
                not pending
                and self.delivered() == self.accepted_messages()
                and self.uploads_done() == len(self.accepted_uploads())
            ):
                break
            time.sleep(1)
        took = time.monotonic() - start
        self.close()
        return took

    def figures(self) -> Figures:
        return Figures(
            uploads_accepted=len(self.accepted_uploads()),
            uploads_done=self.uploads_done(),
            messages_accepted=len(self.accepted_messages()),
            messages_delivered=len(self.delivered()),
            failed=sorted(self.failed, key=lambda f: f.at),
            out_of_order=sum(m.out_of_order for m in self.members),
            duplicates=sum(m.duplicates for m in self.members),
            reconnects=sum(m.reconnects for m in self.members),
        )

    def succeeding_since(self, moment: float) -> float | None:
        """How long after `moment` requests succeeded again for good: the answer to the first
        request sent after the last failure (0: none failed; None: none came)."""
        failures = [f.at for f in self.failed if f.at >= moment]
        if not failures:
            return 0.0
        last_failure = max(failures)
        later = [a for a in self.answers if a.sent > last_failure]
        first = min(later, key=lambda a: a.sent, default=None)
        return None if first is None else first.sent + first.took - moment

    def answered_between(self, start: float, end: float) -> list[Answer]:
        """The requests sent between `start` and `end` that succeeded."""
        return [a for a in self.answers if start <= a.sent <= end]

"""What hostile uploads and websockets cost daphne (issue 12), beside the code before the fixes.

Three scenarios, each against a fresh daphne process (production settings, PostgreSQL, Redis,
local media; no worker runs beside it), for this checkout and for an export of commit
BEFORE_COMMIT (the code before the fixes), each with a database of its own:

1. uploads: 8 concurrent POSTs to /api/uploads/, each of three 7071x7071 single-colour RGBA
   PNGs (~189 KiB each, 50 megapixels decoded): daphne's resident size before and its peak.
2. a frame bomb: one POST of a GIF with a 1x1 canvas and 1,000,000 frames (~15 MB): the
   answer and the CPU time daphne spent on it.
3. sockets that never read: 200 websockets (20 users, 10 each) connect with `?since=0` to a
   room of 2,000 messages of 2,000 characters and never read; then LIVE_MESSAGES more such
   messages are broadcast to the room, and MORE_MESSAGES after those. Daphne's resident size
   before, after the connects and its peak after each round; what the kernel holds unsent;
   how many sockets daphne closed for leaving too much unread (close code 4408, counted from
   its log) and how many connections it has not ended.

Resident sizes come from /proc/<pid>/status (VmRSS, and VmHWM for the peak). Printed, not
asserted. Loopback only; bounded in count and time (a request that takes longer than its
timeout is reported as such).

    .venv/bin/python -m tests.bench.bench_security [--no-before]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.bench import (
    PRODUCTION_ENV,
    ROOT,
    BenchProcess,
    bench_database,
    flush_redis,
    out,
    redis_url,
    status_kib,
    wait_for,
)
from tests.processes import free_port

# The last commit before the fixes of issue 12.
BEFORE_COMMIT = "3de28ab"
DATABASE = "pipeline_bench_security"
# A Redis database index of this benchmark's own (see bench_jobs for the others').
REDIS_DB = 7
SETTINGS = "project.settings"

POSTS, FILES_PER_POST, SIDE = 8, 3, 7071
GIF_FRAMES = 1_000_000
SOCKETS, SOCKET_USERS = 200, 20
ROOM_MESSAGES, BODY_CHARS = 2000, 2000
# Broadcast after the connects, in chunks: 2 MB more for every socket that does not read.
LIVE_MESSAGES, LIVE_CHUNK, LIVE_INTERVAL = 1000, 100, 0.2
# Then as many again twice over: 6 MB in all for each socket, more than the kernel's send
# buffer of a socket takes here (tcp_wmem's maximum, 4 MiB) plus the send budget (1 MiB).
MORE_MESSAGES = 2000
ROOM = "bench-flood"
# Bounds: a request, the frame bomb's request on the code that decodes it, settling.
REQUEST_TIMEOUT = 120.0
GIF_TIMEOUT = 60.0
SETTLE = 5.0
FANOUT_TIMEOUT, IDLE_CPU = 180.0, 0.05
START_TIMEOUT = 60.0
SAMPLE_INTERVAL = 0.02
# Daphne pings a socket idle for 20 s and drops it 30 s later without a pong; a client that
# reads just fast enough answers them. Off for the sockets scenario, to see what piles up.
NO_PINGS = ("--ping-interval", "3600", "--ping-timeout", "3600")
TCP_ESTABLISHED = 1
BUDGET_LOG_LINE = "bytes unread, the process"
# The code before the fixes takes minutes here (the frame bomb alone up to GIF_TIMEOUT).
MODULE_TIMEOUT = 1500
TARGETS = {"uploads_mb": 300, "gif_cpu_s": 0.5, "sockets_mb": 250}

# Run inside the checkout under test (`python -c`), with that checkout's Django and models,
# so that the same set-up serves the old code and the new.
SETUP = r"""
import json, sys, time
import django
django.setup()
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.utils import timezone
from chat.models import Message, Room

command, *args = sys.argv[1:]
if command == "users":
    store = import_module(settings.SESSION_ENGINE).SessionStore
    keys = []
    for n in range(int(args[0])):
        user = User.objects.create_user(f"bench{n}", password=None)
        session = store()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "project.auth.UserBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        keys.append(session.session_key)
    print(json.dumps({"session": settings.SESSION_COOKIE_NAME,
                      "csrf": settings.CSRF_COOKIE_NAME, "keys": keys}))
elif command == "room":
    count, chars = int(args[0]), int(args[1])
    room, _ = Room.objects.get_or_create(name=args[2])
    author = User.objects.order_by("pk").first()
    now = timezone.now()
    Message.objects.bulk_create(
        Message(room=room, author=author, body=f"{n:06d}".ljust(chars, "x"),
                client_id=f"old-{n}", seq=n + 1, published_at=now)
        for n in range(count)
    )
    Room.objects.filter(pk=room.pk).update(last_seq=count, last_message_at=now)
elif command == "publish":
    try:
        from chat.publishing import messages_publish, messages_sequence
    except ImportError:  # before chat/publishing.py
        from chat.services import messages_publish, messages_sequence
    count, chars, chunk, interval = int(args[0]), int(args[1]), int(args[2]), float(args[3])
    room = Room.objects.get(name=args[4])
    author = User.objects.order_by("pk").first()
    published, round_id = 0, time.time_ns()
    for start in range(0, count, chunk):
        Message.objects.bulk_create(
            Message(room=room, author=author, body=f"live {n:06d}".ljust(chars, "y"),
                    client_id=f"live-{round_id}-{n}")
            for n in range(start, min(count, start + chunk))
        )
        messages_sequence(room_id=room.pk)
        published += messages_publish(room_id=room.pk)
        time.sleep(interval)
    print(published)
"""


@dataclass
class Tree:
    label: str
    root: Path
    database: str = ""


@dataclass
class Step:
    """The sockets after one round of live messages."""

    published: int
    peak: float
    kernel_queued: float
    still_open: int
    budget_closed: int


@dataclass
class Figures:
    label: str
    upload_idle: float = 0.0
    upload_peak: float = 0.0
    upload_answers: Counter[int] = field(default_factory=Counter)
    upload_seconds: float = 0.0
    gif_cpu: float = 0.0
    noise_cpu: float = 0.0
    gif_answer: str = ""
    sockets_idle: float = 0.0
    sockets_connected: float = 0.0
    sockets_peak: float = 0.0
    sockets_opened: int = 0
    steps: list[Step] = field(default_factory=list)


# ------------------------------------------------------------------------------ the files


def png_single_colour(side: int, rgba: tuple[int, int, int, int]) -> bytes:
    """A side x side RGBA PNG of one colour, compressed as tightly as zlib goes."""
    row = b"\0" + bytes(rgba) * side
    compressor = zlib.compressobj(9, zlib.DEFLATED, 15, 9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def gif_frames(frames: int) -> bytes:
    """A GIF89a with a 1x1 canvas and `frames` frames of one pixel (15 bytes each)."""
    # Canvas 1x1, a global colour table of two entries.
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    # Image descriptor, LZW minimum code size 2, one sub-block: clear, pixel 0, end.
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return header + frame * frames + b"\x3b"


# --------------------------------------------------------------------------- the process


def mib(kib: int) -> float:
    return kib / 1024


def kernel_send_queues(port: int) -> int:
    """Bytes the kernel holds unsent in daphne's connections (daphne listening on `port`,
    IPv4 loopback): what a client that does not read leaves outside daphne's own memory."""
    local = f":{port:04X}"
    queued = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(local) and fields[3] == "01":
            queued += int(fields[4].split(":")[0], 16)
    return queued


@dataclass
class Site:
    tree: Tree
    env: dict[str, str]
    session_cookie: str
    csrf_cookie: str
    keys: list[str]


def setup_script(tree: Tree, env: dict[str, str], *args: object, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SETUP, *map(str, args)],
        cwd=tree.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode:
        raise RuntimeError(f"{tree.label}: set-up {args[0]} failed:\n{done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


@contextmanager
def daphne(site: Site, name: str, logs: Path, *options: str) -> Iterator[tuple[BenchProcess, int]]:
    port = free_port()
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *options]
    argv.append("project.asgi:application")
    process = BenchProcess(
        f"daphne-{name}", argv, site.env, logs / f"{site.tree.label}-{name}.log", cwd=site.tree.root
    )
    try:
        wait_for(lambda: _answers(port) or not process.alive(), START_TIMEOUT, "daphne")
        if not process.alive():
            raise RuntimeError(process.output()[-3000:])
        yield process, port
    finally:
        process.stop()


def _answers(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/api/uploads/", timeout=2)
    except httpx.HTTPError:
        return False
    return True


def headers(site: Site, key: str) -> dict[str, str]:
    # Any 32 letters make a valid CSRF secret; the cookie and the header only have to agree.
    token = "b" * 32
    return {
        "Cookie": f"{site.session_cookie}={key}; {site.csrf_cookie}={token}",
        "X-CSRFToken": token,
    }


# ----------------------------------------------------------------------------- scenarios


def measure_uploads(site: Site, figures: Figures, pngs: list[bytes], logs: Path) -> None:
    with daphne(site, "uploads", logs) as (process, port):
        pid = process.popen.pid
        url = f"http://127.0.0.1:{port}/api/uploads/"
        figures.upload_idle = mib(status_kib(pid, "VmRSS"))

        def post(n: int) -> int:
            files = [
                ("image", (f"flat-{n}-{i}.png", png, "image/png")) for i, png in enumerate(pngs)
            ]
            try:
                response = httpx.post(
                    url, files=files, headers=headers(site, site.keys[0]), timeout=REQUEST_TIMEOUT
                )
            except httpx.TimeoutException:
                return 0
            return response.status_code

        began = time.monotonic()
        with ThreadPoolExecutor(POSTS) as pool:
            figures.upload_answers = Counter(pool.map(post, range(POSTS)))
        figures.upload_seconds = time.monotonic() - began
        figures.upload_peak = mib(status_kib(pid, "VmHWM"))


def measure_gif(site: Site, figures: Figures, gif: bytes, logs: Path) -> None:
    with daphne(site, "gif", logs) as (process, port):
        url = f"http://127.0.0.1:{port}/api/uploads/"
        # The floor: as many bytes that are no image at all, refused on their first bytes.
        before = process.cpu_seconds()
        with suppress(httpx.TimeoutException):
            httpx.post(
                url,
                files=[("image", ("noise.gif", bytes(len(gif)), "image/gif"))],
                headers=headers(site, site.keys[0]),
                timeout=GIF_TIMEOUT,
            )
        figures.noise_cpu = process.cpu_seconds() - before
        before = process.cpu_seconds()
        try:
            response = httpx.post(
                url,
                files=[("image", ("frames.gif", gif, "image/gif"))],
                headers=headers(site, site.keys[0]),
                timeout=GIF_TIMEOUT,
            )
            reason = ""
            with suppress(ValueError):
                reason = str(response.json().get("error", ""))[:70]
            figures.gif_answer = f"{response.status_code} {reason}".strip()
        except httpx.TimeoutException:
            figures.gif_answer = f"no answer within {GIF_TIMEOUT:g} s"
        figures.gif_cpu = process.cpu_seconds() - before


def wait_until_idle(process: BenchProcess, timeout: float = FANOUT_TIMEOUT) -> None:
    """Until daphne used under IDLE_CPU of CPU over a second (or `timeout` passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = process.cpu_seconds()
        time.sleep(1)
        if process.cpu_seconds() - before < IDLE_CPU:
            return


class Silent:
    """A websocket client that completes the handshake and never reads again."""

    def __init__(self, port: int, path: str, cookie: str) -> None:
        self.sock = socket.socket()
        # A small window: what the client does not read piles up on the server's side.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            answer += chunk
        self.opened = b" 101 " in answer.split(b"\r\n", 1)[0]

    def server_closed(self) -> bool:
        """Whether the server ended the connection (its FIN or reset came), read from the
        kernel's TCP state without reading what waits unread."""
        state = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
        return state != TCP_ESTABLISHED

    def close(self) -> None:
        self.sock.close()


def measure_sockets(site: Site, figures: Figures, logs: Path) -> None:
    with daphne(site, "sockets", logs, *NO_PINGS) as (process, port):
        pid = process.popen.pid
        figures.sockets_idle = mib(status_kib(pid, "VmRSS"))
        peak = [0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                try:
                    peak[0] = max(peak[0], status_kib(pid, "VmRSS"))
                except (OSError, KeyError):
                    return
                time.sleep(SAMPLE_INTERVAL)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        clients: list[Silent] = []
        try:
            per_user = SOCKETS // SOCKET_USERS
            for n in range(SOCKETS):
                cookie = headers(site, site.keys[n // per_user])["Cookie"]
                clients.append(Silent(port, f"/ws/chat/{ROOM}/?since=0", cookie))
            figures.sockets_opened = sum(client.opened for client in clients)
            # Let the replays go out (or pile up).
            time.sleep(SETTLE)
            figures.sockets_connected = mib(status_kib(pid, "VmRSS"))
            for step, count in enumerate((LIVE_MESSAGES, MORE_MESSAGES)):
                published = setup_script(
                    site.tree,
                    site.env,
                    "publish",
                    count,
                    BODY_CHARS,
                    LIVE_CHUNK,
                    LIVE_INTERVAL,
                    ROOM,
                )
                # The broadcasts are in Redis; daphne may take a while to fan them out.
                wait_until_idle(process)
                time.sleep(SETTLE)
                figures.steps.append(
                    Step(
                        published=int(published),
                        peak=mib(max(peak[0], status_kib(pid, "VmHWM"))),
                        kernel_queued=kernel_send_queues(port) / 1024 / 1024,
                        still_open=sum(
                            client.opened and not client.server_closed() for client in clients
                        ),
                        budget_closed=process.output().count(BUDGET_LOG_LINE),
                    )
                )
                if step == 0:
                    figures.sockets_peak = figures.steps[0].peak
        finally:
            sampling.set()
            for client in clients:
                client.close()


# ------------------------------------------------------------------------------ the trees


def export_before(into: Path) -> Tree | None:
    """The code of BEFORE_COMMIT, exported with `git archive` (no worktree to register)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", BEFORE_COMMIT],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    if archive.returncode:
        out(f"no export of {BEFORE_COMMIT}: {archive.stderr.decode(errors='replace')[-500:]}")
        return None
    root = into / "before"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    return Tree(f"before ({BEFORE_COMMIT})", root)


def measure_tree(tree: Tree, tmp: Path, logs: Path, files: dict[str, object]) -> Figures:
    figures = Figures(tree.label)
    layer = redis_url(REDIS_DB)
    flush_redis(layer)
    name = DATABASE if tree.root == ROOT else DATABASE + "_before"
    state = tmp / f"state-{name}"
    state.mkdir()
    with bench_database(name, root=tree.root) as database:
        env = {
            **os.environ,
            **PRODUCTION_ENV,
            "DATABASE_URL": database,
            "REDIS_URL": layer,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "STATE_DIR": str(state),
            "PYTHONPATH": str(tree.root),
        }
        made = json.loads(setup_script(tree, env, "users", SOCKET_USERS))
        setup_script(tree, env, "room", ROOM_MESSAGES, BODY_CHARS, ROOM)
        site = Site(tree, env, made["session"], made["csrf"], made["keys"])
        measure_uploads(site, figures, files["pngs"], logs)  # type: ignore[arg-type]
        measure_gif(site, figures, files["gif"], logs)  # type: ignore[arg-type]
        measure_sockets(site, figures, logs)
    flush_redis(layer)
    return figures


def step_rows(results: list[Figures]) -> list[tuple[str, list[str]]]:
    rows: list[tuple[str, list[str]]] = []
    sent = 0
    for n, count in enumerate((LIVE_MESSAGES, MORE_MESSAGES)):
        sent += count
        steps = [f.steps[n] if len(f.steps) > n else None for f in results]
        rows += [
            (
                f"  after {sent} more messages: peak RSS",
                [f"{s.peak:.0f} ({s.published} sent)" if s else "-" for s in steps],
            ),
            (
                "    kernel send queues (MiB)",
                [f"{s.kernel_queued:.0f}" if s else "-" for s in steps],
            ),
            (
                "    closed 4408; still open",
                [f"{s.budget_closed}; {s.still_open}" if s else "-" for s in steps],
            ),
        ]
    return rows


def report(results: list[Figures], before_note: str) -> None:
    out(
        f"daphne, one process, production settings, PostgreSQL + Redis; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}. Resident sizes in MiB (1 MB = 0.954 MiB)."
    )
    if before_note:
        out(before_note)
    out()
    width = 26
    rows: list[tuple[str, list[str]]] = [
        (
            f"{POSTS} posts x {FILES_PER_POST} PNGs of {SIDE}x{SIDE}: RSS before -> peak",
            [f"{f.upload_idle:.0f} -> {f.upload_peak:.0f}" for f in results],
        ),
        (
            "  answers, wall time",
            [
                ", ".join(f"{n}x{s or 'timeout'}" for s, n in sorted(f.upload_answers.items()))
                + f", {f.upload_seconds:.1f} s"
                for f in results
            ],
        ),
        (f"GIF 1x1, {GIF_FRAMES:,} frames: daphne CPU s", [f"{f.gif_cpu:.2f}" for f in results]),
        ("  answer", [f.gif_answer[:width] for f in results]),
        (
            "  the same bytes, no image: daphne CPU s",
            [f"{f.noise_cpu:.2f}" for f in results],
        ),
        (
            f"{SOCKETS} silent sockets: RSS before -> connected",
            [
                f"{f.sockets_idle:.0f} -> {f.sockets_connected:.0f} ({f.sockets_opened} open)"
                for f in results
            ],
        ),
        *step_rows(results),
    ]
    label_width = max(len(label) for label, _ in rows) + 2
    out(f"{'':<{label_width}}" + "".join(f"{f.label:>{width + 2}}" for f in results))
    out("-" * (label_width + (width + 2) * len(results)))
    for label, cells in rows:
        out(f"{label:<{label_width}}" + "".join(f"{cell:>{width + 2}}" for cell in cells))
    ours = results[-1]
    out()
    to_mb = 1024 * 1024 / 1e6
    checks = [
        (
            f"uploads: peak {ours.upload_peak * to_mb:.0f} MB < {TARGETS['uploads_mb']} MB",
            ours.upload_peak * to_mb < TARGETS["uploads_mb"],
        ),
        (
            f"GIF: refused ({ours.gif_answer[:3]}) in {ours.gif_cpu:.2f} s of daphne CPU "
            f"< {TARGETS['gif_cpu_s']} s",
            ours.gif_cpu < TARGETS["gif_cpu_s"] and ours.gif_answer[:1] == "4",
        ),
        (
            f"sockets: peak {ours.sockets_peak * to_mb:.0f} MB < {TARGETS['sockets_mb']} MB "
            f"after {LIVE_MESSAGES} messages; "
            f"{ours.steps[-1].budget_closed if ours.steps else 0} of {ours.sockets_opened} "
            f"closed (4408) after {LIVE_MESSAGES + MORE_MESSAGES}",
            ours.sockets_peak * to_mb < TARGETS["sockets_mb"],
        ),
    ]
    for text, met in checks:
        out(f"target {'met' if met else 'MISSED'}: {text}")
    out()
    out("Peaks are daphne's VmHWM (and VmRSS sampled every 20 ms): the whole process, Python's")
    out("  own memory included. 'closed 4408' counts the sockets daphne closed for leaving over")
    out("  WEBSOCKET_SEND_BUFFER_MAX unread, or for all of them _TOTAL_MAX (its log); 'still")
    out(f"  open' the connections it had not ended {SETTLE:g} s after daphne fanned the last one")
    out("  out (the clients' TCP state); the")
    out("  kernel's send queues (MiB) are memory outside daphne. Daphne's keep-alive pings are")
    out("  off in that scenario (a client reading just fast enough would answer them).")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-before", action="store_true", help=f"measure this checkout only, not {BEFORE_COMMIT}"
    )
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    colours = [(200, 30, 30, 255), (30, 200, 30, 255), (30, 30, 200, 255)]
    files: dict[str, object] = {
        "pngs": [png_single_colour(SIDE, colour) for colour in colours[:FILES_PER_POST]],
        "gif": gif_frames(GIF_FRAMES),
    }
    pngs: list[bytes] = files["pngs"]  # type: ignore[assignment]
    out(
        f"files: {FILES_PER_POST} PNGs of {sum(map(len, pngs)) / FILES_PER_POST / 1024:.0f} KiB, "
        f"a GIF of {len(files['gif']) / 1e6:.1f} MB"  # type: ignore[arg-type]
    )
    results: list[Figures] = []
    before_note = ""
    with tempfile.TemporaryDirectory(prefix="bench-security-") as tmp_name:
        tmp = Path(tmp_name)
        logs = Path(tempfile.mkdtemp(prefix="bench-security-logs-"))
        out(f"daphne logs: {logs}")
        trees = [Tree("ours", ROOT)]
        if not args.no_before:
            before = export_before(tmp)
            if before is not None:
                trees.insert(0, before)
        for tree in trees:
            try:
                results.append(measure_tree(tree, tmp, logs, files))
            except (RuntimeError, subprocess.SubprocessError, OSError) as failed:
                if tree.root == ROOT:
                    raise
                before_note = f"{tree.label} did not run with this virtualenv: {failed}"[:600]
            else:
                out(f"{tree.label}: measured")
    out()
    report(results, before_note)


if __name__ == "__main__":
    main()

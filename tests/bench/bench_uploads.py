"""A 24-megapixel JPEG upload: response time, upload-to-done, processing time, formats, and
peak memory, with baselines.

1. Upload response: POST /api/uploads/ (answers 202, the thumbnails are left to a worker)
   against tests/bench/inrequest.py, which makes the thumbnails inside the request the way
   sorl-thumbnail, easy-thumbnails and django-imagekit do. Same daphne server (DEBUG off,
   PostgreSQL, Redis, local media), same file; a `runworker thumbnails compute` runs beside it
   and each of our uploads is left to finish before the next request, so it never competes.
   Then upload-to-done: POST until both jobs are done (their events on /ws/jobs/, as the page
   learns it) and the API says `done`, the worker making the
   three sizes in WebP only (THUMBNAIL_FORMATS=webp, quality 80), each run followed at once
   by pyvips' `thumbnail` making the same three WebP sizes (in this process, while the worker
   is idle): the ratio is the median of the runs' own ratios, so that a change of the
   machine's load between runs hits both sides alike.
2. Processing: `media_tasks.imaging.make_renditions` (the thumbnails job: 1600/800/320) in
   WebP only and in WebP + JPEG, against pyvips' `thumbnail` making the same files, and
   pyvips at its best (one decode, each smaller size shrunk from the last, as ours does).
   Same process, interleaved runs, best of BENCH_UPLOAD_RUNS.
3. Formats, measured apart: bytes and encode time of AVIF, WebP and JPEG at each size, with
   the encoder settings of media_tasks/imaging/renditions.py (the README's table).
4. Peak memory: ours and pyvips' three WebP sizes, each in a child process of its own
   (ru_maxrss of RUSAGE_CHILDREN), and the real worker's resident size over
   BENCH_UPLOAD_JOBS consecutive uploads (default 20; the issue's figure is 500): after the
   first, the last, and its peak.

The photo is generated at run time and deleted afterwards. pyvips needs libvips (libvips42).
Run with `make bench`, or alone: `python -m tests.bench.bench_uploads`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import websockets
import websockets.sync.client

from tests.bench import (
    PRODUCTION_ENV,
    ROOT,
    BenchProcess,
    bench_database,
    flush_redis,
    out,
    redis_url,
    setup_django,
    status_kib,
    wait_for,
)

RUNS = int(os.environ.get("BENCH_UPLOAD_RUNS", "5"))
# Consecutive uploads through the real worker, to see that its memory stays flat.
JOBS = int(os.environ.get("BENCH_UPLOAD_JOBS", "20"))
FORMATS = ("AVIF", "WEBP", "JPEG")
WIDTH, HEIGHT = 6000, 4000
# The project's defaults: THUMBNAIL_SIZES and UPLOAD_MAX_PIXELS.
SIZES = (1600, 800, 320)
MAX_PIXELS = 50_000_000
# Encoder settings as media_tasks.imaging uses them (WEBP_QUALITY/METHOD, JPEG_QUALITY).
WEBP_QUALITY, WEBP_EFFORT, JPEG_QUALITY = 80, 4, 82
# Dropped and made anew for the run; both can be moved off others' (BENCH_UPLOAD_DATABASE,
# BENCH_UPLOAD_REDIS_DB).
DATABASE_NAME = os.environ.get("BENCH_UPLOAD_DATABASE", "pipeline_bench_uploads")
# A Redis database index of this benchmark's own (bench_jobs uses 2 to 4).
LAYER_DB = int(os.environ.get("BENCH_UPLOAD_REDIS_DB", "5"))
USERNAME, PASSWORD = "bench", "bench-uploads-password-42"
START_TIMEOUT = 30.0
# One 24 MP upload takes seconds; anything near this means something is wrong.
REQUEST_TIMEOUT = 120.0

OURS = "ours: make_renditions, 3 sizes WebP"
OURS_BOTH = "ours: make_renditions, 3 sizes WebP + JPEG"
VIPS_WEBP = "pyvips thumbnail, 3 sizes WebP"
VIPS_BOTH = "pyvips thumbnail, 3 sizes WebP + JPEG"
VIPS_CASCADE = "pyvips cascade (one decode), 3 sizes WebP"

OURS_CODE = """
from media_tasks import imaging
with open({path!r}, "rb") as fp:
    made = imaging.make_renditions(fp, sizes={sizes!r}, max_pixels={max_pixels}, formats=["WEBP"])
assert len(made) == len({sizes!r}), made
"""
OURS_IMPORTS = "from media_tasks import imaging"
VIPS_CODE = """
import pyvips
pyvips.cache_set_max(0)
for size in {sizes!r}:
    image = pyvips.Image.thumbnail({path!r}, size, height=size)
    image.webpsave_buffer(Q={webp_quality}, effort={webp_effort}, strip=True)
"""
VIPS_IMPORTS = "import pyvips"
# Runs the code given as argv[1] in a child and prints that child's peak resident size (KiB):
# a fresh parent per measurement, so RUSAGE_CHILDREN covers exactly one child.
PEAK_WRAPPER = (
    "import resource, subprocess, sys; "
    "subprocess.run([sys.executable, '-c', sys.argv[1]], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


@dataclass
class Timings:
    label: str
    seconds: list[float]

    @property
    def best_ms(self) -> float:
        return min(self.seconds) * 1000

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000


@dataclass
class Memory:
    label: str
    peak_mib: float
    baseline_mib: float


@dataclass
class UploadRun:
    ours: Timings
    inrequest: Timings
    to_done: Timings
    # pyvips' three WebP sizes, timed right after each upload-to-done.
    vips_beside: Timings
    worker_idle_mib: float
    worker_peak_mib: float
    uploads_processed: int
    # The worker's resident size after each of the consecutive uploads.
    worker_rss_mib: list[float]


@dataclass
class Encoded:
    size: int
    format: str
    bytes: int
    seconds: list[float]


# ---------------------------------------------------------------------------- pyvips


def require_pyvips() -> ModuleType:
    """Import pyvips, installing Debian's libvips first if it is missing and we may."""
    if importlib.util.find_spec("pyvips") is None:
        raise SystemExit("pyvips is not installed: pip install -r requirements/bench.txt")
    try:
        import pyvips
    except OSError as missing:
        apt = shutil.which("apt-get")
        if apt is None or os.geteuid() != 0:
            raise SystemExit(
                f"pyvips cannot load libvips ({missing}); install it, e.g. "
                "`apt-get install -y libvips42`, and run again"
            ) from None
        out("libvips is missing (pyvips needs it): installing Debian's libvips42 with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=True, env=env, timeout=300)
        subprocess.run([apt, "install", "-y", "-qq", "libvips42"], check=True, env=env, timeout=600)
        import pyvips
    # Measure the work, not libvips' operation cache.
    pyvips.cache_set_max(0)
    return pyvips


# ------------------------------------------------------------------------ processing


def ours(photo: Path, formats: tuple[str, ...] = ("WEBP",)) -> list[Any]:
    from media_tasks import imaging

    with photo.open("rb") as fp:
        return imaging.make_renditions(fp, sizes=SIZES, max_pixels=MAX_PIXELS, formats=formats)


def pyvips_thumbnails(vips: ModuleType, photo: Path, *, jpeg: bool) -> list[bytes]:
    made = []
    for size in SIZES:
        image = vips.Image.thumbnail(str(photo), size, height=size)
        if jpeg:
            # thumbnail() streams from the file once; a second save needs the pixels in memory.
            image = image.copy_memory()
        made.append(image.webpsave_buffer(Q=WEBP_QUALITY, effort=WEBP_EFFORT, strip=True))
        if jpeg:
            made.append(
                image.jpegsave_buffer(
                    Q=JPEG_QUALITY, interlace=True, optimize_coding=True, strip=True
                )
            )
    return made


def pyvips_cascade(vips: ModuleType, photo: Path) -> list[bytes]:
    """pyvips at its best: decode once for the largest size, shrink each next from the last."""
    made = []
    image = None
    for size in SIZES:
        if image is None:
            image = vips.Image.thumbnail(str(photo), size, height=size)
        else:
            image = image.thumbnail_image(size, height=size)
        image = image.copy_memory()
        made.append(image.webpsave_buffer(Q=WEBP_QUALITY, effort=WEBP_EFFORT, strip=True))
    return made


def measure_processing(photo: Path, vips: ModuleType) -> list[Timings]:
    """Best of RUNS per candidate, runs interleaved so that other load hits all alike."""
    candidates: dict[str, Callable[[], object]] = {
        OURS: lambda: ours(photo),
        OURS_BOTH: lambda: ours(photo, ("WEBP", "JPEG")),
        VIPS_WEBP: lambda: pyvips_thumbnails(vips, photo, jpeg=False),
        VIPS_BOTH: lambda: pyvips_thumbnails(vips, photo, jpeg=True),
        VIPS_CASCADE: lambda: pyvips_cascade(vips, photo),
    }
    renditions = ours(photo)
    vips_webp = pyvips_thumbnails(vips, photo, jpeg=False)
    out(
        "outputs: ours "
        + ", ".join(f"{r.name} {r.width}x{r.height} {len(r.data) // 1024} KiB" for r in renditions)
    )
    out(
        "         pyvips "
        + ", ".join(
            f"{size}-webp {len(data) // 1024} KiB"
            for size, data in zip(SIZES, vips_webp, strict=True)
        )
    )
    timings = {label: Timings(label, []) for label in candidates}
    for run in range(RUNS):
        for label, candidate in candidates.items():
            started = time.perf_counter()
            candidate()
            timings[label].seconds.append(time.perf_counter() - started)
        out(
            f"processing run {run + 1}/{RUNS}: "
            + ", ".join(f"{t.seconds[-1] * 1000:.0f} ms" for t in timings.values())
        )
    return list(timings.values())


def measure_formats(photo: Path) -> list[Encoded]:
    """Bytes and encode time per format and size, as the thumbnails job encodes them, from
    the same downscaled pixels (decoding and resizing are not counted)."""
    from PIL import Image

    from media_tasks.imaging import pixels, renditions

    with Image.open(photo) as img:
        img.draft("RGB", pixels.fit(img.size, max(SIZES)))
        current = img.convert("RGB")
    results = []
    for size in SIZES:
        current = pixels.resize(current, pixels.fit(current.size, size))
        for fmt in FORMATS:
            seconds = []
            made = None
            for _ in range(RUNS):
                started = time.perf_counter()
                made = renditions._encode(current, size, fmt)
                seconds.append(time.perf_counter() - started)
            assert made is not None
            results.append(Encoded(size, fmt, len(made.data), seconds))
        out(
            f"formats at {size} px: "
            + ", ".join(
                f"{e.format} {e.bytes // 1024} KiB {min(e.seconds) * 1000:.0f} ms"
                for e in results[-len(FORMATS) :]
            )
        )
    return results


# ---------------------------------------------------------------------------- memory


def child_peak_mib(code: str) -> float:
    result = subprocess.run(
        [sys.executable, "-c", PEAK_WRAPPER, code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=REQUEST_TIMEOUT,
    )
    return int(result.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def measure_memory(photo: Path) -> list[Memory]:
    values = {
        "path": str(photo),
        "sizes": list(SIZES),
        "max_pixels": MAX_PIXELS,
        "webp_quality": WEBP_QUALITY,
        "webp_effort": WEBP_EFFORT,
    }
    return [
        Memory(OURS, child_peak_mib(OURS_CODE.format(**values)), child_peak_mib(OURS_IMPORTS)),
        Memory(VIPS_WEBP, child_peak_mib(VIPS_CODE.format(**values)), child_peak_mib(VIPS_IMPORTS)),
    ]


def resident_mib(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of a live process, in MiB."""
    return status_kib(pid, field) / 1024


# --------------------------------------------------------------------- upload response


def timed_post(client: httpx.Client, url: str, data: bytes, status: int) -> tuple[float, Any]:
    started = time.perf_counter()
    response = client.post(url, files={"image": ("photo-24mp.jpg", data, "image/jpeg")})
    elapsed = time.perf_counter() - started
    if response.status_code != status:
        raise RuntimeError(f"POST {url}: {response.status_code} {response.text[:500]}")
    return elapsed, response.json()


def wait_jobs_done(socket: Any, upload_id: int) -> None:
    """Read the owner's job events (/ws/jobs/, as the page does) until both jobs of the
    upload are done: no polling beside the work (a poll every few ms costs the server's CPU
    what the worker needs)."""
    done: set[int] = set()
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while len(done) < 2:
        frame = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame.get("upload") != upload_id:
            continue
        if frame["type"] == "job.failed":
            raise RuntimeError(f"upload {upload_id} failed: {frame}")
        if frame["type"] == "job.done":
            done.add(frame["job"])


def wait_processed(client: httpx.Client, detail_url: str) -> None:
    def finished() -> bool:
        return client.get(detail_url).json()["status"] in {"done", "failed"}

    wait_for(finished, REQUEST_TIMEOUT, f"{detail_url} to be processed", interval=0.01)
    detail = client.get(detail_url).json()
    if detail["status"] != "done":
        raise RuntimeError(f"{detail_url} failed: {detail['error']}")


def measure_uploads(photo: Path, work: Path, logs: Path, vips: ModuleType) -> UploadRun:
    from tests.processes import free_port, login

    data = photo.read_bytes()
    layer = redis_url(LAYER_DB)
    flush_redis(layer)
    with bench_database(DATABASE_NAME) as database:
        setup_django(database=database, redis=layer, settings="tests.bench.settings")
        # Django's logging config (INFO on the root) would print every poll of this client.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("pyvips").setLevel(logging.WARNING)
        from django.contrib.auth.models import User
        from django.db import connections

        from tests.bench.inrequest import URL as INREQUEST_URL

        User.objects.create_user(username=USERNAME, password=PASSWORD)
        connections.close_all()
        env = {
            **os.environ,
            **PRODUCTION_ENV,
            "DATABASE_URL": database,
            "REDIS_URL": layer,
            "DJANGO_SETTINGS_MODULE": "tests.bench.settings",
            "STATE_DIR": str(work / "state"),
            "MEDIA_ROOT": str(work / "media"),
            "MEDIA_STORAGE": "local",
            "DJANGO_LOG_LEVEL": "INFO",
            # Upload-to-done is measured like for like with pyvips: the three sizes in WebP.
            "THUMBNAIL_FORMATS": "webp",
            # Hundreds of 12 MB uploads by one user: past a user's limits of a real site.
            "UPLOADS_PER_HOUR": str(10 * (RUNS + 1 + JOBS)),
            "UPLOAD_QUOTA_BYTES": str(100 * 1024**3),
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        server = BenchProcess(
            "daphne", [*daphne, "project.asgi:application"], env, logs / "web.log"
        )
        worker = BenchProcess(
            "worker",
            [sys.executable, "manage.py", "runworker", "thumbnails", "compute"],
            env,
            logs / "worker.log",
        )
        try:
            worker.wait_for_output("listening on channels", START_TIMEOUT)
            wait_for(lambda: serving(base, server), START_TIMEOUT, "daphne to serve")
            client = login(base, USERNAME, PASSWORD)
            client.timeout = httpx.Timeout(REQUEST_TIMEOUT)
            worker_idle = resident_mib(worker.popen.pid, "VmRSS")
            # Warm-up (imports, connections, first-use caches), not timed.
            _, created = timed_post(client, "/api/uploads/", data, 202)
            wait_processed(client, created["uploads"][0]["url"])
            timed_post(client, INREQUEST_URL, data, 201)
            ours_run, inrequest_run = Timings("ours", []), Timings("in request", [])
            to_done = Timings("upload to done", [])
            vips_beside = Timings(VIPS_WEBP, [])
            jobs_socket = websockets.sync.client.connect(
                f"ws://127.0.0.1:{port}/ws/jobs/",
                origin=websockets.Origin(base),
                additional_headers={"Cookie": f"sessionid={client.cookies['sessionid']}"},
            )
            jobs_socket.recv(timeout=REQUEST_TIMEOUT)  # the snapshot
            for run in range(RUNS):
                started = time.perf_counter()
                seconds, created = timed_post(client, "/api/uploads/", data, 202)
                ours_run.seconds.append(seconds)
                wait_jobs_done(jobs_socket, created["uploads"][0]["id"])
                # The API says done as soon as both jobs are (one request).
                wait_processed(client, created["uploads"][0]["url"])
                to_done.seconds.append(time.perf_counter() - started)
                started = time.perf_counter()
                pyvips_thumbnails(vips, photo, jpeg=False)
                vips_beside.seconds.append(time.perf_counter() - started)
                seconds, _ = timed_post(client, INREQUEST_URL, data, 201)
                inrequest_run.seconds.append(seconds)
                out(
                    f"upload run {run + 1}/{RUNS}: ours {ours_run.seconds[-1] * 1000:.0f} ms, "
                    f"to done {to_done.seconds[-1] * 1000:.0f} ms "
                    f"(pyvips {vips_beside.seconds[-1] * 1000:.0f} ms), "
                    f"in request {inrequest_run.seconds[-1] * 1000:.0f} ms"
                )
            out(phases(RUNS + 1))
            rss = []
            for job in range(JOBS):
                _, created = timed_post(client, "/api/uploads/", data, 202)
                wait_processed(client, created["uploads"][0]["url"])
                rss.append(resident_mib(worker.popen.pid, "VmRSS"))
                if job % 10 == 9 or job == JOBS - 1:
                    out(f"consecutive uploads {job + 1}/{JOBS}: worker resident {rss[-1]:.0f} MiB")
            worker_peak = resident_mib(worker.popen.pid, "VmHWM")
            jobs_socket.close()
            client.close()
        except BaseException:
            out(f"web log tail:\n{server.output()[-2000:]}")
            out(f"worker log tail:\n{worker.output()[-2000:]}")
            raise
        finally:
            server.stop()
            worker.stop()
            flush_redis(layer)
    return UploadRun(
        ours_run,
        inrequest_run,
        to_done,
        vips_beside,
        worker_idle,
        worker_peak,
        RUNS + 1 + JOBS,
        rss,
    )


def phases(last: int) -> str:
    """Where the time of the last `last` uploads went, from their rows: upload saved to each
    job's start (the wake-up), each job's run, medians in ms."""
    from media_tasks.models import Upload

    rows: dict[str, list[float]] = {}
    uploads = Upload.objects.select_related("thumbnails_job", "analysis_job").order_by("-pk")
    for upload in uploads[:last]:
        for name, job in (("thumbnails", upload.thumbnails_job), ("analysis", upload.analysis_job)):
            if job is None or job.started_at is None or job.finished_at is None:
                continue
            waited = (job.started_at - upload.created_at).total_seconds() * 1000
            ran = (job.finished_at - job.started_at).total_seconds() * 1000
            rows.setdefault(f"{name} job: saved to started", []).append(waited)
            rows.setdefault(f"{name} job: started to finished", []).append(ran)
    return "phases (median ms): " + ", ".join(
        f"{label} {statistics.median(values):.0f}" for label, values in rows.items()
    )


def serving(base: str, server: BenchProcess) -> bool:
    if not server.alive():
        raise RuntimeError(f"daphne exited:\n{server.output()[-3000:]}")
    try:
        return httpx.get(base + "/accounts/login/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# ---------------------------------------------------------------------------- report


def report(
    photo_bytes: int,
    uploads: UploadRun,
    processing: list[Timings],
    memory: list[Memory],
    formats: list[Encoded],
) -> None:
    out()
    out(
        f"One {WIDTH}x{HEIGHT} JPEG ({WIDTH * HEIGHT / 1e6:.0f} MP, {photo_bytes / 1e6:.1f} MB); "
        f"best of {RUNS} (median beside it), milliseconds"
    )
    out()
    width = 52
    header = f"{'upload response (POST until the response)':<{width}}{'best':>9}{'median':>9}"
    out(header)
    out("-" * len(header))
    rows = [
        ("ours: POST /api/uploads/ -> 202, work queued", uploads.ours),
        ("in request: thumbnails before the response", uploads.inrequest),
    ]
    for label, timing in rows:
        out(f"{label:<{width}}{timing.best_ms:>9.0f}{timing.median_ms:>9.0f}")
    ratio = uploads.inrequest.best_ms / uploads.ours.best_ms
    out(f"ratio in-request / ours (best): x{ratio:.2f}  (ours answers {ratio:.1f} times sooner)")
    out()
    by_label = {timing.label: timing for timing in processing}
    vips = uploads.vips_beside
    header = f"{'upload to done (3 sizes WebP q80) vs pyvips':<{width}}{'best':>9}{'median':>9}"
    out(header)
    out("-" * len(header))
    out(
        f"{'ours: POST until the API says done':<{width}}{uploads.to_done.best_ms:>9.0f}"
        f"{uploads.to_done.median_ms:>9.0f}"
    )
    out(f"{VIPS_WEBP + ', after each':<{width}}{vips.best_ms:>9.0f}{vips.median_ms:>9.0f}")
    ratios = [
        ours / theirs for ours, theirs in zip(uploads.to_done.seconds, vips.seconds, strict=True)
    ]
    out(
        f"ratio upload-to-done / pyvips: x{statistics.median(ratios):.2f} (median of the runs' "
        f"ratios, x{min(ratios):.2f}-x{max(ratios):.2f}; target: at most x1.00)"
    )
    out()
    header = f"{'processing (same process, interleaved)':<{width}}{'best':>9}{'median':>9}"
    out(header)
    out("-" * len(header))
    for timing in processing:
        out(f"{timing.label:<{width}}{timing.best_ms:>9.0f}{timing.median_ms:>9.0f}")
    for mine, baseline in ((OURS, VIPS_WEBP), (OURS_BOTH, VIPS_BOTH), (OURS, VIPS_CASCADE)):
        ratio = by_label[mine].best_ms / by_label[baseline].best_ms
        verdict = "faster" if ratio < 1 else "slower"
        out(f"ratio {mine} / {baseline} (best): x{ratio:.2f}  (ours {verdict})")
    out()
    out("formats for a 24 MP photo (encode only, from the same resized pixels; best of runs)")
    out()
    out("| size | format | bytes | encode ms |")
    out("|---:|---|---:|---:|")
    for item in formats:
        out(
            f"| {item.size} | {item.format} | {item.bytes / 1024:.0f} KiB | "
            f"{min(item.seconds) * 1000:.0f} |"
        )
    out()
    header = f"{'peak memory (resident, MiB)':<{width}}{'peak':>9}{'import':>9}"
    out(header)
    out("-" * len(header))
    for item in memory:
        out(f"{item.label:<{width}}{item.peak_mib:>9.0f}{item.baseline_mib:>9.0f}")
    worker_label = f"runworker thumbnails+compute, {uploads.uploads_processed} uploads"
    out(f"{worker_label:<{width}}{uploads.worker_peak_mib:>9.0f}{uploads.worker_idle_mib:>9.0f}")
    out(
        "('import': the same child only importing its library; for the worker, its resident "
        "size when idle before the first upload)"
    )
    rss = uploads.worker_rss_mib
    if rss:
        out(
            f"worker resident over {len(rss)} consecutive uploads: after the first {rss[0]:.0f} "
            f"MiB, after the last {rss[-1]:.0f} MiB, highest {max(rss):.0f} MiB, "
            f"growth first to last {rss[-1] - rss[0]:+.0f} MiB"
        )


def main() -> None:
    vips = require_pyvips()
    from tests.media_tasks.images import photo_like

    logs = Path(tempfile.mkdtemp(prefix="bench-uploads-logs-"))
    out(f"server and worker logs: {logs}")
    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as tmp:
        work = Path(tmp)
        photo = work / "photo-24mp.jpg"
        out(f"generating a {WIDTH}x{HEIGHT} photo-like JPEG ...")
        photo.write_bytes(photo_like(WIDTH, HEIGHT))
        processing = measure_processing(photo, vips)
        formats = measure_formats(photo)
        memory = measure_memory(photo)
        uploads = measure_uploads(photo, work, logs, vips)
        report(photo.stat().st_size, uploads, processing, memory, formats)


if __name__ == "__main__":
    main()

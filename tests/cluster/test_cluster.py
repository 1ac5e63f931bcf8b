"""Several hosts under real systemd (tests/cluster/bed.py): a load balancer, two web hosts
(nginx + pipeline-web.service), two worker hosts (pipeline-worker@ instances), a database-and-
Redis host and a Redis replica, the project installed as README "Production" says. Clients
go through the load balancer over HTTPS; faults are real (a host's power pulled, a host
frozen, Redis killed), with twelve users uploading and chatting meanwhile (tests/cluster/
load.py); the figures each test measures are printed (`-s` shows them)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.cluster.bed import SENTINEL_MASTER, SITE, Cluster, Host, cluster, seconds_until
from tests.cluster.load import Figures, Load
from tests.media_tasks.images import photo_like

pytestmark = pytest.mark.cluster

PASSWORD = "a-long-cluster-password-42"
WORKERS = ("thumbnails-1", "compute-1", "chat-messages-1")
# Bounds of the waits: a job, a recovery after a dead host (JOBS_STALE_AFTER=6 s here).
JOB_WAIT = 120
# The twelve users of the load, and how long it runs before and after each fault.
LOAD_USERS = [(f"user{n}", PASSWORD) for n in range(1, 13)]
LOAD_BEFORE = 5
LOAD_AFTER = 10


@pytest.fixture(scope="module")
def bed() -> Iterator[Cluster]:
    started = time.monotonic()
    with cluster() as bed:
        prepared = time.monotonic()
        # Three Sentinels on three hosts, watching the primary on `data`.
        # The load balancer first: the web hosts' nginx trusts its address.
        hosts = [
            bed.add("lb", 5, "lb"),
            bed.add("data", 10, "database", "redis", "sentinel"),
            bed.add("redis2", 12, "replica", "sentinel"),
            bed.add("web1", 11, "web", "sentinel"),
            bed.add("web2", 13, "web"),
            bed.add("work1", 21, "worker"),
            bed.add("work2", 22, "worker"),
        ]
        for host in hosts:
            host.boot()
            bed.start_services(host)
        web = bed.hosts["web1"]
        # README "Production": the schema, a first user, then the units.
        bed.migrate(web)
        bed.create_user(web, "alice", PASSWORD)
        bed.create_users(web, LOAD_USERS)
        for host in bed.web_hosts():
            host.sh("systemctl enable --now pipeline-web.service")
        for host in bed.web_hosts():
            wait_for_healthy(host)
        for name in ("work1", "work2"):
            start_workers(bed.hosts[name])
        print(
            f"\ncluster: image and code {prepared - started:.1f} s, "
            f"{len(hosts)} hosts booted and installed {time.monotonic() - prepared:.1f} s"
        )
        yield bed


def start_workers(host: Host) -> None:
    units = " ".join(f"pipeline-worker@{name}" for name in WORKERS)
    host.sh(f"systemctl enable {units} && systemctl enable --now pipeline-workers.target")
    for name in WORKERS:
        host.sh(f"systemctl is-active --quiet pipeline-worker@{name}")


@pytest.fixture(scope="module")
def alice(bed: Cluster) -> Iterator[httpx.Client]:
    client = bed.client("alice", PASSWORD)
    yield client
    client.close()


def upload(client: httpx.Client, picture: bytes, name: str = "photo.jpg") -> int:
    response = client.post("/api/uploads/", files={"image": (name, picture, "image/jpeg")})
    assert response.status_code == 202, response.text
    return int(response.json()["uploads"][0]["id"])


def status(client: httpx.Client, upload_id: int) -> dict[str, Any]:
    response = client.get(f"/api/uploads/{upload_id}/")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


# Lines of one host printed per fault (nginx logs one a request it gave up on).
PRINTED_LINES = 6
# How long journald may take to have a line a process wrote (the hosts share one clock).
JOURNAL_WAIT = 30


def journal_since(host: Host, since: float, *units: str) -> list[str]:
    """`host`'s journal lines (of `units`, else all of them) since wall-clock time `since`."""
    return host.journal(*units, since=f"--since=@{int(since)}").splitlines()


def journal_says(
    host: Host, since: float, *needles: str, units: tuple[str, ...] = (), at_most: int = 0
) -> list[str]:
    """The lines of `host`'s journal since `since` that contain every one of `needles`,
    waited for until there is one; with `at_most`, asserted to be no more than that many
    (one line per event, not one per retry)."""
    lines: list[str] = []

    def found() -> bool:
        lines[:] = [
            line
            for line in journal_since(host, since, *units)
            if all(needle in line for needle in needles)
        ]
        return bool(lines)

    seconds_until(found, JOURNAL_WAIT, f"{host.name}'s journal to say {' ... '.join(needles)}")
    if at_most:
        assert len(lines) <= at_most, "\n".join(lines)
    return lines


def nginx_errors_since(host: Host, lines_before: int) -> list[str]:
    """nginx's error log on `host` (a file, as Debian's nginx writes it) past its first
    `lines_before` lines."""
    return host.sh(f"tail -n +{lines_before + 1} /var/log/nginx/error.log").stdout.splitlines()


def nginx_error_lines(host: Host) -> int:
    return int(host.sh("wc -l < /var/log/nginx/error.log").stdout)


def worker_processes(host: Host) -> int:
    """The pipeline-worker@ instances running on `host`: each logs its own transitions."""
    listed = host.sh(
        "systemctl list-units --plain --no-legend --state=active 'pipeline-worker@*'"
    ).stdout
    return len([line for line in listed.splitlines() if line.strip()])


def print_journal(fault: str, said: dict[str, list[str]]) -> None:
    """The lines each host's log has for `fault`, cut short (a first failure carries its
    traceback on the same line)."""
    print(f"\ncluster: logs, {fault}:")
    for where, lines in said.items():
        for line in lines[:PRINTED_LINES]:
            print(f"  {where}: {line[:220]}{' ...' if len(line) > 220 else ''}")
        if len(lines) > PRINTED_LINES:
            print(f"  {where}: ... and {len(lines) - PRINTED_LINES} more lines like these")


def test_the_units_run_sandboxed_with_their_memory_bound_enforced(bed: Cluster) -> None:
    worker = bed.hosts["work1"]
    unit = "pipeline-worker@thumbnails-1.service"
    shown = worker.sh(f"systemctl show {unit} -p MainPID -p MemoryMax -p User").stdout
    properties = dict(line.split("=", 1) for line in shown.split())
    assert properties["User"] == "pipeline"
    assert int(properties["MemoryMax"]) == 1024**3
    pid = properties["MainPID"]
    process = worker.sh(f"cat /proc/{pid}/status").stdout
    # NoNewPrivileges= and SystemCallFilter= hold for the running worker.
    assert "NoNewPrivs:\t1" in process
    assert "Seccomp:\t2" in process
    # The unit's memory cgroup has the bound, and the kernel enforces bounds in these hosts:
    # a process past one is killed.
    limit = worker.sh(
        "cat /sys/fs/cgroup/memory/system.slice/system-pipeline\\\\x2dworker.slice/"
        f"{unit}/memory.limit_in_bytes"
    ).stdout
    assert int(limit) == 1024**3
    hog = worker.sh(
        "systemd-run --quiet --wait -p MemoryMax=64M -p MemorySwapMax=0 "
        "/opt/pipeline/.venv/bin/python -c 'x = bytearray(512 * 1024 * 1024); print(len(x))'",
        check=False,
    )
    assert hog.returncode != 0
    assert "536870912" not in hog.stdout


def test_an_upload_through_nginx_ends_done_and_its_renditions_are_served(
    bed: Cluster, alice: httpx.Client
) -> None:
    upload_id = upload(alice, photo_like(1200, 900))
    took = seconds_until(
        lambda: status(alice, upload_id)["status"] == "done", JOB_WAIT, "the upload to be done"
    )
    done = status(alice, upload_id)
    assert done["renditions"]
    # Made on a worker host, served by the web host's nginx from the shared media directory.
    # Whatever its format (AVIF, WebP, JPEG), the file the worker wrote, whole, as an image.
    made = done["renditions"][0]
    rendition = alice.get(made["url"])
    assert rendition.status_code == 200
    assert rendition.headers["content-type"] == f"image/{made['format'].lower()}"
    assert len(rendition.content) == made["bytes"]
    print(f"\ncluster: one upload done in {took:.1f} s")


def test_a_worker_host_powered_off_mid_job_loses_nothing(bed: Cluster, alice: httpx.Client) -> None:
    since = time.time()
    pictures = [photo_like(2400, 1800, seed=n, quality=70) for n in range(12)]
    accepted: list[int] = []
    moments: dict[str, Any] = {}

    def power_off() -> None:
        # The twelve in one request: the queue holds them all when the host is powered off,
        # so its worker is mid-job (it claims the next the moment one ends).
        accepted.extend(upload_many(alice, pictures))
        for _ in range(3):
            victim = wait_for_running_on_a_worker_host(bed, accepted)
            victim.power_off()
            moments["victim"], moments["at"] = victim, time.monotonic()
            # What the dead host held stays as it left it: running, in its name.
            held = bed.psql(
                "SELECT id, worker_id FROM workers_job WHERE status = 'running' "  # noqa: S608
                f"AND worker_id LIKE '{victim.name}:%'"
            )
            moments["held"] = dict(line.split("|") for line in held.splitlines())
            if moments["held"]:
                return
            # It was between two jobs: back on, and again.
            restore_worker_host(victim)
        raise AssertionError("three power-offs found the worker host between jobs")

    try:
        under_load(bed, "worker host powered off mid-job", power_off)
        victim: Host = moments["victim"]
        held: dict[str, str] = moments["held"]
        other = bed.hosts["work2" if victim.name == "work1" else "work1"]

        def finished() -> list[dict[str, Any]] | None:
            states = [status(alice, upload_id) for upload_id in accepted]
            return states if all(s["status"] in {"done", "failed"} for s in states) else None

        seconds_until(finished, JOB_WAIT, "every accepted upload to finish")
        recovered = time.monotonic() - moments["at"]
        states = finished()
        assert states is not None
        done = [s for s in states if s["status"] == "done"]
        # Nothing done twice: one set of renditions per upload, whoever ran it.
        ids = ",".join(str(int(upload_id)) for upload_id in accepted)
        runs = bed.psql(
            "SELECT count(*) FROM workers_job WHERE status = 'succeeded' "  # noqa: S608 (ids)
            f"AND channel = 'thumbnails' AND (meta->>'upload')::int IN ({ids})"
        )
        # Every job the dead host held ended, run by another worker after it.
        ended = bed.psql(
            "SELECT count(*) FROM workers_job WHERE status = 'succeeded' "  # noqa: S608 (ids)
            f"AND id IN ({','.join(held)}) AND worker_id NOT LIKE '{victim.name}:%'"
        )
        print(
            f"\ncluster: worker host {victim.name} powered off mid-job: uploads accepted "
            f"{len(accepted)}, done {len(done)}, lost {len(accepted) - len(done)}; jobs it held "
            f"{len(held)}, taken over and done {ended}; all finished {recovered:.1f} s after "
            "the power-off"
        )
        assert len(done) == len(accepted)
        assert int(runs) == len(accepted)
        assert int(ended) == len(held)
        for state in done:
            names = [(r["name"], r["format"]) for r in state["renditions"]]
            assert names
            assert len(names) == len(set(names)), state
        assert other.sh("systemctl is-active pipeline-worker@thumbnails-1").stdout.strip() == (
            "active"
        )
        # The surviving host's sweep says it queued again each job the dead host held: one
        # line a job, naming the dead worker.
        taken: list[str] = []
        for job, worker in held.items():
            taken += journal_says(
                other,
                since,
                f"job={job} worker {worker} stopped responding; queued again",
                at_most=1,
            )
        print_journal(f"worker host {victim.name} powered off", {other.name: taken})
    finally:
        # Power back on (the same disk: its enabled workers start again at boot), whatever
        # happened above, so that the faults after this one find every host.
        if "victim" in moments:
            restore_worker_host(moments["victim"])


def upload_many(client: httpx.Client, pictures: list[bytes]) -> list[int]:
    response = client.post(
        "/api/uploads/",
        files=[("image", (f"p{n}.jpg", p, "image/jpeg")) for n, p in enumerate(pictures)],
    )
    assert response.status_code == 202, response.text
    return [int(u["id"]) for u in response.json()["uploads"]]


def restore_worker_host(host: Host) -> None:
    """`host` running again with its workers, if it is not."""
    if host.leader() is None:
        host.boot()
    for name in WORKERS:
        wait_for_active(host, f"pipeline-worker@{name}")


def wait_for_running_on_a_worker_host(bed: Cluster, uploads: list[int]) -> Host:
    """The worker host running a thumbnails job of `uploads` now (waits for one)."""
    found: list[Host] = []
    ids = ",".join(map(str, uploads))

    def running() -> bool:
        worker_id = bed.psql(
            "SELECT worker_id FROM workers_job WHERE status = 'running' "  # noqa: S608 (ids)
            f"AND channel = 'thumbnails' AND (meta->>'upload')::int IN ({ids}) LIMIT 1"
        )
        host = worker_id.split(":")[0] if worker_id else ""
        if host in bed.hosts:
            found.append(bed.hosts[host])
        return bool(found)

    seconds_until(running, JOB_WAIT, "a thumbnails job to run on a worker host")
    return found[0]


def wait_for_active(host: Host, unit: str) -> None:
    seconds_until(
        lambda: host.sh(f"systemctl is-active {unit}", check=False).stdout.strip() == "active",
        60,
        f"{unit} on {host.name}",
    )


def autoscale_pass(host: Host) -> str:
    """One pass of the real unit (as its timer would start it); its log line per channel."""
    host.sh("systemctl start pipeline-autoscale.service")
    return host.journal("pipeline-autoscale.service")


def thumbnails_instances(host: Host) -> list[str]:
    listed = host.sh(
        "systemctl list-units --plain --no-legend --state=active 'pipeline-worker@thumbnails-*'"
    ).stdout
    return sorted(line.split()[0] for line in listed.splitlines() if line.strip())


def test_a_burst_starts_workers_and_they_stop_when_idle(bed: Cluster, alice: httpx.Client) -> None:
    host, other = bed.hosts["work1"], bed.hosts["work2"]
    since = time.time()
    host.sh("systemctl enable --now pipeline-autoscale.timer")
    assert "pipeline-autoscale.timer" in host.sh("systemctl list-timers --all --no-legend").stdout
    # The timer's passes would do what the passes below do; these run them at once. A pass
    # the timer started may still be running: stopped too, so that only those below run.
    host.sh("systemctl stop pipeline-autoscale.timer pipeline-autoscale.service")
    # No thumbnails worker anywhere: the burst waits in the queue for the autoscaler.
    for worker in (host, other):
        worker.sh("systemctl stop pipeline-worker@thumbnails-1")
    try:
        accepted = [upload(alice, photo_like(800, 600, seed=100 + n)) for n in range(12)]
        time.sleep(2)  # older than AUTOSCALE_SCALE_UP_AGE (1 s here)
        log = autoscale_pass(host)
        during = thumbnails_instances(host)
        assert len(during) >= 2, log
        assert "autoscale channel=thumbnails ready=12" in log
        seconds_until(
            lambda: all(status(alice, n)["status"] == "done" for n in accepted),
            JOB_WAIT,
            "the burst to be done",
        )
        # Idle (AUTOSCALE_SCALE_DOWN_IDLE here: 3 s): one fewer a pass, down to the minimum.
        time.sleep(4)
        shrinking = [len(during)]
        while shrinking[-1] > 1 and len(shrinking) < 10:
            autoscale_pass(host)
            seconds_until(
                lambda: len(thumbnails_instances(host)) < shrinking[-1], 60, "an instance to stop"
            )
            shrinking.append(len(thumbnails_instances(host)))
    finally:
        other.sh("systemctl start pipeline-worker@thumbnails-1")
    print(
        f"\ncluster: autoscale, thumbnails instances on {host.name}: 0 -> {len(during)} for a "
        f"burst of {len(accepted)}, then {' -> '.join(map(str, shrinking[1:]))} once idle"
    )
    assert shrinking[-1] == 1
    # One line a channel a pass: the pass that started instances names them, each pass that
    # stopped one names it.
    said = journal_says(
        host, since, "autoscale channel=thumbnails", units=("pipeline-autoscale.service",)
    )
    started = [line.split("started=", 1)[1].split()[0] for line in said if "started=thu" in line]
    stopped = [line.split("stopped=", 1)[1].split()[0] for line in said if "stopped=thu" in line]
    assert started == [
        ",".join(u.removeprefix("pipeline-worker@").removesuffix(".service") for u in during)
    ], said
    assert len(stopped) == len(set(stopped)) == len(during) - 1, said
    print_journal("autoscale", {host.name: [line for line in said if "=thu" in line]})


def sentinel_primary(host: Host) -> str:
    """The primary's address as the Sentinel on `host` names it."""
    answer = host.sh(
        f"redis-cli -p 26379 sentinel get-master-addr-by-name {SENTINEL_MASTER}", check=False
    ).stdout.split()
    return answer[0] if answer else ""


def healthz(host: Host) -> bool:
    """`host`'s /healthz over plain HTTP, as a probe asks it (by address)."""
    try:
        response = httpx.get(f"http://{host.address}/healthz", headers={"Host": SITE}, timeout=5)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def wait_for_healthy(host: Host) -> float:
    return seconds_until(lambda: healthz(host), JOB_WAIT, f"/healthz of {host.name} to pass")


def under_load(bed: Cluster, name: str, fault: Callable[[], None]) -> tuple[Figures, Load, float]:
    """`fault` with the twelve users at work (LOAD_BEFORE s before it, LOAD_AFTER s after);
    then every accepted upload must end done and every accepted message reach every member,
    once and in order. Prints the figures; returns them, the load and when the fault began."""
    load = Load(bed, LOAD_USERS)
    load.start()
    try:
        time.sleep(LOAD_BEFORE)
        began = time.monotonic()
        fault()
        ended = time.monotonic()
        time.sleep(LOAD_AFTER)
    finally:
        settled = load.settle(JOB_WAIT)
    figures = load.figures()
    again = load.succeeding_since(began)
    print(
        f"\ncluster: {name}, with 12 users: {figures.line(began)}; the fault lasted "
        f"{ended - began:.1f} s; requests succeeding for good "
        + (f"{again:.1f} s after it began" if again is not None else "never")
        + f"; everything accepted settled {settled:.1f} s after the load stopped"
    )
    assert figures.uploads_lost == 0, figures
    assert figures.messages_lost == 0, figures
    assert figures.out_of_order == 0, figures
    assert figures.duplicates == 0, figures
    return figures, load, began


def test_the_redis_primary_killed_sentinel_promotes_the_replica(bed: Cluster) -> None:
    primary, replica = bed.redis_host(), bed.hosts["redis2"]
    assert sentinel_primary(replica) == primary.address
    since = time.time()
    moments: dict[str, float] = {}

    def kill() -> None:
        killed = time.monotonic()
        primary.sh("systemctl kill --signal=SIGKILL redis-server && systemctl stop redis-server")
        moments["promoted"] = seconds_until(
            lambda: all(sentinel_primary(h) == replica.address for h in bed.sentinel_hosts()),
            JOB_WAIT,
            "the Sentinels to promote the replica",
        )
        moments["healthy"] = max(wait_for_healthy(web) for web in bed.web_hosts())
        moments["took"] = time.monotonic() - killed

    try:
        under_load(bed, "Redis primary killed", kill)
    finally:
        # The old primary comes back as a replica of the new one.
        primary.sh("systemctl start redis-server")
    print(
        f"\ncluster: Redis primary killed: promoted after {moments['promoted']:.1f} s, "
        f"/healthz of every web host passing {moments['healthy']:.1f} s later"
    )
    seconds_until(
        lambda: (
            "role:slave"
            in primary.sh(
                f"redis-cli -a {bed.passwords['redis']} --no-auth-warning info replication",
                check=False,
            ).stdout
        ),
        JOB_WAIT,
        "the old primary to follow the new one",
    )
    # The Sentinels say they moved the primary; its host, that Redis was killed.
    switch = f"+switch-master {SENTINEL_MASTER} {primary.address} 6379 {replica.address} 6379"
    said = {
        sentinel.name: [
            line
            for line in sentinel.sh("cat /var/log/redis/redis-sentinel.log").stdout.splitlines()
            if switch in line
        ]
        for sentinel in bed.sentinel_hosts()
    }
    assert all(said.values()), said
    said.setdefault(primary.name, []).extend(
        journal_says(
            primary, since, "redis-server.service", "status=9/KILL", units=("redis-server",)
        )
    )
    # Each web host's limiter: Redis failing once, then back at the promoted replica, once
    # (a daphne process a host). Each worker process's receive on its channel, at most the
    # same: one that was not waiting on Redis at the kill, or whose client's retries outlasted
    # the promotion, followed the new primary without a failed call, and has nothing to say.
    for web in bed.web_hosts():
        said.setdefault(web.name, []).extend(redis_outage(web, since, at=f"{replica.address}:6379"))
    for name in ("work1", "work2"):
        worker = bed.hosts[name]
        said[name] = outage_lines(
            worker, since, "receive", at_most=worker_processes(worker), units=()
        )
    print_journal("Redis primary killed", said)


def outage_lines(
    host: Host, since: float, what: str, *, at_most: int, units: tuple[str, ...]
) -> list[str]:
    """`host`'s journal lines for the outage of `what` since `since`: none, if none of its
    calls failed; else at most `at_most` saying it is failing (one a process), and as many
    saying it is back."""
    failing = [line for line in journal_since(host, since, *units) if f"{what} failing" in line]
    assert len(failing) <= at_most, "\n".join(failing)
    if not failing:
        return []
    back = journal_says(host, since, f"{what} back after", units=units, at_most=at_most)
    return failing + back


def redis_outage(web: Host, since: float, *, at: str) -> list[str]:
    """The lines of a web host's journal since `since` for its rate limiter's Redis: one
    failing, one back (at `at`, the primary's address)."""
    units = ("pipeline-web.service",)
    failing = journal_says(web, since, "Redis for the rate limits failing", units=units, at_most=1)
    back = journal_says(web, since, "Redis for the rate limits back after", units=units, at_most=1)
    assert back[0].endswith(f"calls failed) at {at}"), back
    return failing + back


def test_a_web_host_cut_off_from_redis_for_10_s_loses_nothing(bed: Cluster) -> None:
    web = bed.hosts["web1"]
    redis_hosts = ", ".join(
        h.address for h in bed.hosts.values() if {"redis", "replica"} & set(h.roles)
    )
    moments: dict[str, float] = {}
    since = time.time()

    def cut() -> None:
        web.sh(
            "nft add table inet fault && "
            "nft add chain inet fault out '{ type filter hook output priority 0; }' && "
            f"nft add rule inet fault out ip daddr '{{ {redis_hosts} }}' tcp dport "
            "'{ 6379, 26379 }' drop"
        )
        try:
            time.sleep(10)
        finally:
            web.sh("nft delete table inet fault")
        moments["healthy"] = wait_for_healthy(web)

    under_load(bed, "web1 cut off from Redis for 10 s", cut)
    print(f"\ncluster: web1's /healthz passing {moments['healthy']:.1f} s after the cut ended")
    # web1 says it once each (the limiter used to say it every 5 s); web2, never cut, not at all.
    said = {web.name: redis_outage(web, since, at=f"{bed.hosts['redis2'].address}:6379")}
    assert not [
        line
        for line in journal_since(bed.hosts["web2"], since, "pipeline-web.service")
        if "Redis for the rate limits failing" in line
    ]
    print_journal("web1 cut off from Redis", said)


# Longer than a worker's heartbeat (JOBS_SWEEP_INTERVAL, 1 s here) and the load's polls (2 s).
DATABASE_DOWN = 5


def test_a_postgresql_restart_loses_nothing(bed: Cluster) -> None:
    database = bed.database_host()
    since = time.time()
    # Down for DATABASE_DOWN s: on a quiet machine a bare restart takes a fraction of a second,
    # and a process that did not touch the database meanwhile has nothing to say.
    restart = f"systemctl stop postgresql && sleep {DATABASE_DOWN} && systemctl start postgresql"
    under_load(bed, "PostgreSQL restarted", lambda: database.sh(restart))
    # Each worker process: its database failing, then back, once each (they used to say it
    # every second, heartbeat and sweep apart); its drains at most once each way too (they
    # used to say it, and a traceback of the consumer's crash, for every wake-up).
    said = {}
    for name in ("work1", "work2"):
        worker = bed.hosts[name]
        processes = worker_processes(worker)
        said[name] = journal_says(
            worker, since, "worker=", "database failing", at_most=processes
        ) + journal_says(worker, since, "worker=", "database back after", at_most=processes)
        lines = journal_since(worker, since)
        drains = [line for line in lines if "drain database" in line]
        assert len([line for line in drains if "failing" in line]) <= processes, drains
        crashed = [line for line in lines if "consumer stopped" in line and "django.db" in line]
        assert not crashed, crashed
        said[name] += drains
    said[database.name] = journal_says(
        database, since, "Started postgresql@", units=("postgresql@15-main",)
    )
    # A web host whose requests were answered 503 meanwhile, or whose websockets' connects
    # and frames failed (closed 4503, answered `unavailable`): once when the first failed,
    # once when one was answered again (it used to log each, with its traceback; a socket's
    # was daphne's "Exception inside application"). A restart that none of a host's requests
    # ran into leaves no line there.
    units = ("pipeline-web.service",)
    for web in bed.web_hosts():
        said[web.name] = [
            line
            for what in ("requests'", "websockets'")
            for line in outage_lines(
                web, since, f"{what} database or message broker", at_most=1, units=units
            )
        ]
        logged = journal_since(web, since, *units)
        crashed = [line for line in logged if "Exception inside application" in line]
        assert not crashed, crashed
    print_journal("PostgreSQL restarted", said)


def access_log_lines(host: Host) -> int:
    return int(host.sh("wc -l < /var/log/nginx/access.log").stdout)


def wait_for_serving(host: Host) -> float:
    """How long until the load balancer sends `host` requests again (its access log grows):
    up to fail_timeout (10 s) after a failure there."""
    lines = access_log_lines(host)
    return seconds_until(
        lambda: access_log_lines(host) > lines + 5, JOB_WAIT, f"{host.name} to serve again"
    )


def test_a_frozen_web_host_is_passed_by_and_serves_again_once_thawed(bed: Cluster) -> None:
    web = bed.hosts["web2"]
    moments: dict[str, float] = {}
    balancer = bed.entry()
    errors_before = nginx_error_lines(balancer)

    def freeze() -> None:
        web.freeze()
        moments["frozen"] = time.monotonic()
        try:
            time.sleep(20)
        finally:
            web.thaw()
        moments["thawed"] = time.monotonic()
        moments["healthy"] = wait_for_healthy(web)
        moments["serving"] = wait_for_serving(web)

    figures, load, _ = under_load(bed, "web2 frozen for 20 s", freeze)
    frozen, thawed = moments["frozen"], moments["thawed"]
    failed = [f for f in figures.failed if frozen <= f.at <= thawed]
    answered = load.answered_between(frozen, thawed)
    slowest = max((a.took for a in answered), default=0.0)
    print(
        f"\ncluster: web2 frozen for {thawed - frozen:.1f} s: {len(failed)} requests failed, "
        f"{len(answered)} sent meanwhile answered (through web1), the slowest in {slowest:.1f} s;"
        f" after the thaw web2's /healthz passing in {moments['healthy']:.1f} s, web2 serving "
        f"the load again after {moments['healthy'] + moments['serving']:.1f} s"
    )
    assert answered, "nothing succeeded through web1 while web2 was frozen"
    # The load balancer's error log names the frozen host for each request it gave up on
    # there (then it sends it nothing for fail_timeout).
    said = [line for line in nginx_errors_since(balancer, errors_before) if "upstream" in line]
    assert [line for line in said if f"//{web.address}:443" in line], said
    print_journal("web2 frozen", {f"{balancer.name} (nginx error.log)": said})


def test_a_rolling_deploy_loses_nothing(bed: Cluster) -> None:
    moments: dict[str, float] = {}
    since = time.time()
    balancer = bed.entry()
    errors_before = nginx_error_lines(balancer)

    def deploy() -> None:
        # README "Several machines", an upgrade: one web host at a time, out of the load
        # balancer's rotation while it restarts, and the next only once the load balancer
        # sends this one requests again; then the workers, one host at a time.
        for name in ("web1", "web2"):
            web = bed.hosts[name]
            web.sh(
                "systemctl stop nginx && systemctl restart pipeline-web.service && "
                f"until curl -sf -H 'Host: {SITE}' http://127.0.0.1:8001/healthz >/dev/null; "
                "do sleep 1; done && systemctl start nginx",
                timeout=JOB_WAIT,
            )
            moments[name] = wait_for_healthy(web) + wait_for_serving(web)
        for name in ("work1", "work2"):
            worker = bed.hosts[name]
            worker.sh("systemctl restart pipeline-workers.target", timeout=JOB_WAIT)
            for unit in WORKERS:
                wait_for_active(worker, f"pipeline-worker@{unit}")

    figures, _, began = under_load(bed, "rolling deploy (web1, web2, work1, work2)", deploy)
    server_errors = [f for f in figures.failed if isinstance(f.status, int) and f.status >= 500]
    window = (
        f"between {server_errors[0].at - began:.1f} and {server_errors[-1].at - began:.1f} s"
        if server_errors
        else "no window"
    )
    print(
        f"\ncluster: rolling deploy: {len(server_errors)} answers 5xx ({window} after it began), "
        f"{len(figures.failed) - len(server_errors)} requests failed without an answer; "
        f"web1 back in the rotation {moments['web1']:.1f} s after its restart, "
        f"web2 {moments['web2']:.1f} s"
    )
    # Each web host: its server restarted; the load balancer: each web host refusing while
    # its nginx was stopped; each worker host: each worker stopped and listening again.
    said: dict[str, list[str]] = {}
    for web in bed.web_hosts():
        said[web.name] = journal_says(
            web, since, "Started pipeline-web.service", units=("pipeline-web.service",)
        )
    refused = [line for line in nginx_errors_since(balancer, errors_before) if "upstream" in line]
    for web in bed.web_hosts():
        assert [line for line in refused if f"//{web.address}:443" in line], refused
    said[f"{balancer.name} (nginx error.log)"] = refused
    for name in ("work1", "work2"):
        worker = bed.hosts[name]
        stopped = journal_says(worker, since, " stopped", "worker=")
        assert len([line for line in stopped if line.endswith(" stopped")]) >= len(WORKERS)
        listening = [
            journal_says(worker, since, "listening on channels " + unit.rsplit("-", 1)[0])[-1]
            for unit in WORKERS
        ]
        said[name] = [line for line in stopped if line.endswith(" stopped")] + listening
    print_journal("rolling deploy", said)


def place_thumbnails_instances(bed: Cluster, count: int) -> None:
    """`count` thumbnails workers over the worker hosts, in turn (work1, work2, work1, ...),
    the k-th pinned to core k modulo this machine's cores (the hosts share them); the others
    stopped."""
    cores = os.cpu_count() or 1
    hosts = [bed.hosts["work1"], bed.hosts["work2"]]
    for n in range(1, 3):
        for index, host in enumerate(hosts):
            placed = (n - 1) * len(hosts) + index
            unit = f"pipeline-worker@thumbnails-{n}"
            dropin = f"/run/systemd/system/{unit}.service.d"
            if placed < count:
                host.sh(
                    f"mkdir -p {dropin} && printf '[Service]\\nCPUAffinity={placed % cores}\\n' "
                    f">{dropin}/cpu.conf && systemctl daemon-reload && systemctl restart {unit}"
                )
                wait_for_active(host, unit)
            else:
                host.sh(f"systemctl stop {unit} && rm -rf {dropin} && systemctl daemon-reload")


def test_throughput_of_1_2_and_4_thumbnails_workers(bed: Cluster, alice: httpx.Client) -> None:
    web = bed.hosts["web1"]
    bed.hosts["work1"].sh("systemctl stop pipeline-autoscale.timer")
    pictures = [photo_like(640, 480, seed=500 + n, quality=80) for n in range(48)]
    figures: list[tuple[int, float]] = []
    try:
        for count in (1, 2, 4):
            place_thumbnails_instances(bed, count)
            web.sh("/opt/pipeline/deploy/bin/pipeline-manage jobs pause thumbnails")
            accepted: list[int] = []
            # 12 files a request: nginx's per-address limit on upload requests stays clear.
            for batch in range(0, len(pictures), 12):
                response = alice.post(
                    "/api/uploads/",
                    files=[
                        ("image", (f"p{batch + i}.jpg", picture, "image/jpeg"))
                        for i, picture in enumerate(pictures[batch : batch + 12])
                    ],
                )
                assert response.status_code == 202, response.text
                accepted += [int(u["id"]) for u in response.json()["uploads"]]
            ids = ",".join(map(str, accepted))
            query = (
                "SELECT count(*) FROM workers_job WHERE channel = 'thumbnails' "  # noqa: S608
                f"AND status = 'succeeded' AND (meta->>'upload')::int IN ({ids})"
            )
            started = time.monotonic()
            web.sh("/opt/pipeline/deploy/bin/pipeline-manage jobs resume thumbnails")
            seconds_until(
                lambda: int(bed.psql(query)) == len(accepted),  # noqa: B023 (used at once)
                JOB_WAIT * 2,
                f"48 thumbnails jobs on {count} workers",
            )
            figures.append((count, time.monotonic() - started))
    finally:
        web.sh("/opt/pipeline/deploy/bin/pipeline-manage jobs resume thumbnails", check=False)
        place_thumbnails_instances(bed, 2)
    one = figures[0][1]
    print(
        "\ncluster: 48 uploads' thumbnails on "
        + ", ".join(
            f"{n} worker{'s' if n > 1 else ''} {took:.1f} s ({48 / took:.2f}/s, x{one / took:.2f})"
            for n, took in figures
        )
        + f" (the worker hosts share this machine's {os.cpu_count()} cores)"
    )

"""Several hosts under real systemd (tests/cluster/bed.py): a database-and-Redis host, a web host
(nginx + pipeline-web.service) and two worker hosts (pipeline-worker@ instances), the project
installed as README "Production" says. Uploads go through nginx over HTTPS; faults are real
(a host's power pulled); the figures each test measures are printed (`-s` shows them)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.cluster.bed import SENTINEL_MASTER, SITE, Cluster, Host, cluster, seconds_until
from tests.media_tasks.images import photo_like

pytestmark = pytest.mark.cluster

PASSWORD = "a-long-cluster-password-42"
WORKERS = ("thumbnails-1", "compute-1", "chat-messages-1")
# Bounds of the waits: a job, a recovery after a dead host (JOBS_STALE_AFTER=6 s here).
JOB_WAIT = 120


@pytest.fixture(scope="module")
def bed() -> Iterator[Cluster]:
    started = time.monotonic()
    with cluster() as bed:
        prepared = time.monotonic()
        # Three Sentinels on three hosts, watching the primary on `data`.
        hosts = [
            bed.add("data", 10, "database", "redis", "sentinel"),
            bed.add("redis2", 12, "replica", "sentinel"),
            bed.add("web1", 11, "web", "sentinel"),
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
        web.sh("systemctl enable --now pipeline-web.service")
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
    client = bed.client(bed.hosts["web1"], "alice", PASSWORD)
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
    rendition = alice.get(done["renditions"][0]["url"])
    assert rendition.status_code == 200
    assert rendition.content[:4] in {b"RIFF", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1"} or (
        rendition.content[:3] == b"\xff\xd8\xff"
    )
    print(f"\ncluster: one upload done in {took:.1f} s")


def test_a_worker_host_powered_off_mid_job_loses_nothing(bed: Cluster, alice: httpx.Client) -> None:
    accepted = [upload(alice, photo_like(2400, 1800, seed=n, quality=70)) for n in range(12)]
    victim = wait_for_running_on_a_worker_host(bed)
    other = bed.hosts["work2" if victim.name == "work1" else "work1"]
    powered_off = time.monotonic()
    victim.power_off()

    def finished() -> list[dict[str, Any]] | None:
        states = [status(alice, upload_id) for upload_id in accepted]
        return states if all(s["status"] in {"done", "failed"} for s in states) else None

    states = seconds_until(finished, JOB_WAIT, "every accepted upload to finish") and finished()
    recovered = time.monotonic() - powered_off
    assert states is not None
    done = [s for s in states if s["status"] == "done"]
    # Nothing done twice: one set of renditions per upload, whoever ran it.
    ids = ",".join(str(int(upload_id)) for upload_id in accepted)
    runs = bed.psql(
        "SELECT count(*) FROM workers_job WHERE status = 'succeeded' "  # noqa: S608 (ids)
        f"AND channel = 'thumbnails' AND (meta->>'upload')::int IN ({ids})"
    )
    taken_over = bed.psql(
        "SELECT count(*) FROM workers_job WHERE jsonb_array_length(worker_ids) > 1 "  # noqa: S608
        f"AND (meta->>'upload')::int IN ({ids})"
    )
    print(
        f"\ncluster: worker host {victim.name} powered off mid-job: uploads accepted "
        f"{len(accepted)}, done {len(done)}, lost {len(accepted) - len(done)}; jobs taken over "
        f"{taken_over}; all finished {recovered:.1f} s after the power-off"
    )
    assert len(done) == len(accepted)
    assert int(runs) == len(accepted)
    for state in done:
        names = [(r["name"], r["format"]) for r in state["renditions"]]
        assert names
        assert len(names) == len(set(names)), state
    assert other.sh("systemctl is-active pipeline-worker@thumbnails-1").stdout.strip() == "active"

    # Power back on: the same disk, its enabled workers start again at boot.
    victim.boot()
    for name in WORKERS:
        wait_for_active(victim, f"pipeline-worker@{name}")


def wait_for_running_on_a_worker_host(bed: Cluster) -> Host:
    """The worker host that is running a job now (waits for one)."""
    found: list[Host] = []

    def running() -> bool:
        worker_id = bed.psql(
            "SELECT worker_id FROM workers_job WHERE status = 'running' "
            "AND channel = 'thumbnails' LIMIT 1"
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
    host.sh("systemctl enable --now pipeline-autoscale.timer")
    assert "pipeline-autoscale.timer" in host.sh("systemctl list-timers --all --no-legend").stdout
    # The timer's passes would do what the passes below do; these run them at once.
    host.sh("systemctl stop pipeline-autoscale.timer")
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


def sentinel_primary(host: Host) -> str:
    """The primary's address as the Sentinel on `host` names it."""
    answer = host.sh(
        f"redis-cli -p 26379 sentinel get-master-addr-by-name {SENTINEL_MASTER}", check=False
    ).stdout.split()
    return answer[0] if answer else ""


def healthz(bed: Cluster) -> bool:
    try:
        response = httpx.get(
            f"http://{bed.hosts['web1'].address}/healthz", headers={"Host": SITE}, timeout=5
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def test_the_redis_primary_killed_sentinel_promotes_the_replica(
    bed: Cluster, alice: httpx.Client
) -> None:
    primary, replica = bed.redis_host(), bed.hosts["redis2"]
    assert sentinel_primary(replica) == primary.address
    killed = time.monotonic()
    primary.sh("systemctl kill --signal=SIGKILL redis-server && systemctl stop redis-server")
    promoted = seconds_until(
        lambda: all(sentinel_primary(h) == replica.address for h in bed.sentinel_hosts()),
        JOB_WAIT,
        "the Sentinels to promote the replica",
    )
    healthy = seconds_until(lambda: healthz(bed), JOB_WAIT, "/healthz to pass again")
    accepted = [upload(alice, photo_like(800, 600, seed=200 + n)) for n in range(4)]
    seconds_until(
        lambda: all(status(alice, n)["status"] == "done" for n in accepted),
        JOB_WAIT,
        "uploads after the failover to be done",
    )
    recovered = time.monotonic() - killed
    print(
        f"\ncluster: Redis primary killed: promoted after {promoted:.1f} s, /healthz passing "
        f"{healthy:.1f} s later; {len(accepted)} uploads after it done, all within "
        f"{recovered:.1f} s of the kill"
    )
    # The old primary comes back as a replica of the new one.
    primary.sh("systemctl start redis-server")
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


def uploads_through(
    bed: Cluster, client: httpx.Client, fault: Callable[[], None], *, name: str, seed: int
) -> None:
    """Uploads before, during and after `fault` (bounded: 3 + 3 + 3); every accepted one must
    end done. Prints what was accepted, refused and done, and how long /healthz failed."""
    accepted: list[int] = []
    refused = 0

    def send(count: int) -> None:
        nonlocal refused
        for n in range(count):
            try:
                accepted.append(upload(client, photo_like(640, 480, seed=seed + len(accepted) + n)))
            except (AssertionError, httpx.HTTPError):
                refused += 1

    send(3)
    started = time.monotonic()
    fault_thread = threading.Thread(target=fault)
    fault_thread.start()
    send(3)
    fault_thread.join()
    restored = time.monotonic()
    back = seconds_until(lambda: healthz(bed), JOB_WAIT, f"/healthz after {name}")
    send(3)
    seconds_until(
        lambda: all(status(client, n)["status"] == "done" for n in accepted),
        JOB_WAIT,
        f"every upload accepted around {name} to be done",
    )
    print(
        f"\ncluster: {name}: uploads accepted {len(accepted)}, refused {refused}, "
        f"done {len(accepted)}, lost 0; fault lasted {restored - started:.1f} s, "
        f"/healthz passing {back:.1f} s after it ended; all done "
        f"{time.monotonic() - restored:.1f} s after it ended"
    )


def test_a_web_host_cut_off_from_redis_for_10_s_loses_no_upload(
    bed: Cluster, alice: httpx.Client
) -> None:
    web = bed.hosts["web1"]
    redis_hosts = ", ".join(
        h.address for h in bed.hosts.values() if {"redis", "replica"} & set(h.roles)
    )

    def cut() -> None:
        web.sh(
            "nft add table inet fault && "
            "nft add chain inet fault out '{ type filter hook output priority 0; }' && "
            f"nft add rule inet fault out ip daddr '{{ {redis_hosts} }}' tcp dport "
            "'{ 6379, 26379 }' drop"
        )
        time.sleep(10)
        web.sh("nft delete table inet fault")

    uploads_through(bed, alice, cut, name="web1 cut off from Redis for 10 s", seed=300)


def test_a_postgresql_restart_loses_no_upload(bed: Cluster, alice: httpx.Client) -> None:
    database = bed.database_host()
    uploads_through(
        bed,
        alice,
        lambda: database.sh("systemctl restart postgresql"),
        name="PostgreSQL restarted",
        seed=400,
    )

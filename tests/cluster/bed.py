"""The cluster test bed: Debian hosts booted under real systemd (systemd-nspawn) on a private
bridge, with the project installed as README "Production" tells an operator to.

What works on these machines and what it takes is in the team's notes on systemd test hosts;
in short: one overlay per host on a cached image (tests/cluster/image.sh), each host started
from a cgroup of its own, its PID 1 a wrapper that makes the cgroup controllers writable (so
that MemoryMax= is enforced), commands run inside with nsenter. Every host, bridge, overlay
and cgroup made here is removed by `Cluster.destroy()`, which also runs on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.processes import ROOT, log_in, wait_for

VAR = ROOT / "var" / "cluster"
BRIDGE = "pipelinebr0"
# A private range of the bed's own; the host (this machine) is .1 on the bridge.
NETWORK = "10.231.7"
HOST_ADDRESS = f"{NETWORK}.1"
SITE = "pipeline.example.com"
SENTINEL_MASTER = "pipeline"
# The test's clients, each from an address of its own on the bridge (as users behind the load
# balancer are), so that the per-address limits count each one apart.
CLIENT_ADDRESSES = tuple(f"{NETWORK}.{200 + n}" for n in range(1, 13))
# Sentinel takes the primary for down after this long (30 s by default).
SENTINEL_DOWN_AFTER_MS = 2000
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROPAGATE = Path("/run/systemd/nspawn/propagate")
# The job runtime's recovery, faster than production's so that a fault shows within a test.
FAST_JOBS = {
    "JOBS_HEARTBEAT_INTERVAL": "1",
    "JOBS_STALE_AFTER": "6",
    "JOBS_REDISPATCH_AFTER": "3",
    "JOBS_SWEEP_INTERVAL": "1",
    # The autoscaler too: up after 1 s of waiting, down after 3 s of nothing to do.
    "AUTOSCALE_SCALE_UP_AGE": "1",
    "AUTOSCALE_READY_PER_INSTANCE": "4",
    "AUTOSCALE_SCALE_DOWN_IDLE": "3",
    "AUTOSCALE_MAX_INSTANCES": "3",
}


def run(*args: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kwargs)


TOOLS = ("systemd-container", "debootstrap")


def ensure_tools() -> None:
    """systemd-nspawn and debootstrap, from Debian, if this machine lacks them."""
    if shutil.which("systemd-nspawn") and shutil.which("debootstrap"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    # Without recommends: libnss-mymachines would edit this machine's nsswitch.conf.
    subprocess.run(
        # Waiting for another install that holds dpkg's lock, rather than failing.
        [
            "apt-get",
            "install",
            "-y",
            "-qq",
            "-o",
            "DPkg::Lock::Timeout=600",
            "--no-install-recommends",
            *TOOLS,
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def build_image() -> Path:
    """The cached image's root directory (built on first use: a few minutes)."""
    VAR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [str(ROOT / "tests" / "cluster" / "image.sh"), str(VAR)],
        check=False,
        stdout=subprocess.PIPE,
        text=True,
    )
    if result.returncode != 0:
        logs = sorted(VAR.glob("build-*.log"))
        tail = logs[-1].read_text()[-3000:] if logs else ""
        raise RuntimeError(f"building the cluster image failed:\n{tail}")
    return Path(result.stdout.strip().splitlines()[-1]) / "root"


def clone_code(destination: Path) -> None:
    """The checkout's files as a clone has them (with uncommitted changes), compiled:
    README's `git clone` and `compileall` into /opt/pipeline."""
    target = destination / "opt" / "pipeline"
    target.mkdir(parents=True)
    listed = run(
        "git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"
    )
    for name in filter(None, listed.stdout.split("\0")):
        source = ROOT / name
        if source.is_file() and not name.startswith("var/"):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    run(
        sys.executable,
        "-m",
        "compileall",
        "-q",
        "-s",
        str(target),
        "-p",
        "/opt/pipeline",
        str(target),
    )


@dataclass
class Host:
    """One test host: its overlay, its nspawn process and its systemd."""

    cluster: Cluster
    name: str
    number: int
    roles: tuple[str, ...]
    popen: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def address(self) -> str:
        return f"{NETWORK}.{self.number}"

    @property
    def directory(self) -> Path:
        return self.cluster.run_dir / "hosts" / self.name

    @property
    def root(self) -> Path:
        return self.directory / "root"

    @property
    def interface(self) -> str:
        return f"vb-{self.name}"

    @property
    def freezer(self) -> Path:
        return CGROUP_ROOT / "freezer" / f"nspawn-{self.name}"

    # --- Lifecycle -------------------------------------------------------------------

    def mount(self) -> None:
        for part in ("upper", "work", "root"):
            (self.directory / part).mkdir(parents=True, exist_ok=True)
        lower = f"{self.cluster.code_dir}:{self.cluster.image}"
        run(
            "mount",
            "-t",
            "overlay",
            f"overlay-{self.name}",
            "-o",
            f"lowerdir={lower},upperdir={self.directory / 'upper'},"
            f"workdir={self.directory / 'work'}",
            str(self.root),
        )

    def cgroups(self) -> list[Path]:
        return [
            path / f"nspawn-{self.name}"
            for path in sorted(CGROUP_ROOT.iterdir())
            if path.is_dir() and (path / "cgroup.procs").exists()
        ]

    def boot(self) -> None:
        """Start the host (its disk kept from any earlier boot); returns once systemd runs."""
        for cgroup in self.cgroups():
            cgroup.mkdir(exist_ok=True)
            if cgroup.parent.name == "cpuset":
                # A cpuset cgroup takes no process before it has CPUs and memory nodes.
                for key in ("cpuset.cpus", "cpuset.mems"):
                    (cgroup / key).write_text((cgroup.parent / key).read_text())
        self.log = self.directory / "console.log"
        # Each host also by its name in README "Several machines" (deploy/nginx/lb.conf).
        names = "\n".join(
            f"{h.address} {h.name} {h.name}.internal" for h in self.cluster.hosts.values()
        )
        self.write("/etc/hosts", f"127.0.0.1 localhost\n{names}\n")
        moves = " ".join(f"echo $$ > {cgroup}/cgroup.procs;" for cgroup in self.cgroups())
        nspawn = [
            "systemd-nspawn",
            "-q",
            "-D",
            str(self.root),
            "--register=no",
            "--keep-unit",
            f"--machine={self.name}",
            f"--network-bridge={BRIDGE}",
            "--console=passive",
            *self.cluster.binds(self),
            "/usr/local/sbin/cluster-init",
        ]
        self.popen = subprocess.Popen(
            ["sh", "-c", f'{moves} exec "$@"', "sh", *nspawn],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self.systemd_running, 60, f"{self.name} to boot", 0.2)
        # systemd says "running" before networkd has put the address on.
        wait_for(
            lambda: f"inet {self.address}/" in self.sh("ip -4 addr show host0").stdout,
            30,
            f"{self.name}'s address",
            0.2,
        )

    def leader(self) -> int | None:
        """The PID (here) of the host's systemd, its PID 1."""
        for cgroup in self.cgroups():
            if cgroup.parent.name != "pids":
                continue
            for path in cgroup.rglob("cgroup.procs"):
                for pid in path.read_text().split():
                    with contextlib.suppress(OSError):
                        status = Path(f"/proc/{pid}/status").read_text()
                        nspid = re.search(r"^NSpid:\s+(.*)$", status, re.M)
                        if nspid and nspid[1].split()[-1] == "1" and len(nspid[1].split()) > 1:
                            return int(pid)
        return None

    def systemd_running(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            console = self.log.read_text(errors="replace")[-2000:] if self.log else ""
            raise AssertionError(f"{self.name} stopped while booting:\n{console}")
        if self.leader() is None:
            return False
        state = self.sh("systemctl is-system-running", check=False).stdout.strip()
        return state in {"running", "degraded"}

    def power_off(self) -> None:
        """Pull the plug: SIGKILL to the host's PID 1 (its processes die with it)."""
        leader = self.leader()
        if leader is not None:
            os.kill(leader, signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(30)
        self.clean_after_stop()

    def shut_down(self) -> None:
        """A clean shutdown (nspawn passes SIGTERM on as a poweroff), killed if it hangs."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                leader = self.leader()
                if leader is not None:
                    os.kill(leader, signal.SIGKILL)
                self.popen.wait(30)
        self.clean_after_stop()

    def freeze(self) -> None:
        """Stop every process of the host where it stands (the cgroup freezer): its kernel
        still accepts connections, nothing answers them."""
        (self.freezer / "freezer.state").write_text("FROZEN")
        wait_for(
            lambda: (self.freezer / "freezer.state").read_text().strip() == "FROZEN",
            30,
            f"{self.name} to freeze",
            0.1,
        )

    def thaw(self) -> None:
        (self.freezer / "freezer.state").write_text("THAWED")

    def clean_after_stop(self) -> None:
        shutil.rmtree(PROPAGATE / self.name, ignore_errors=True)

    def destroy(self) -> None:
        if self.freezer.exists():
            self.thaw()
        self.shut_down()
        if self.root.is_mount():
            run("umount", "-l", str(self.root), check=False)
        for cgroup in self.cgroups():
            if cgroup.exists():
                # Nested cgroups first (systemd's inside the host).
                for inner in sorted(cgroup.rglob("*/"), key=lambda p: -len(p.parts)):
                    if inner.is_dir():
                        with contextlib.suppress(OSError):
                            inner.rmdir()
                with contextlib.suppress(OSError):
                    cgroup.rmdir()

    # --- Inside ----------------------------------------------------------------------

    def sh(
        self, script: str, *, check: bool = True, timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell script inside the host (all its namespaces), as root."""
        leader = self.leader()
        assert leader is not None, f"{self.name} is not running"
        result = subprocess.run(
            [
                "nsenter",
                "--target",
                str(leader),
                "--all",
                "/usr/bin/env",
                "-i",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                *(f"{k}={v}" for k, v in env.items()),
                "/bin/sh",
                "-c",
                script,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{self.name}: {script!r} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        """A file in the host's disk (before or after boot)."""
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def journal(self, *units: str, since: str = "") -> str:
        flags = " ".join(f"-u {unit}" for unit in units)
        return self.sh(f"journalctl --no-pager -o cat {flags} {since}", check=False).stdout


@dataclass
class Cluster:
    """The hosts, their shared parts (code, media, passwords) and the bridge between them."""

    run_dir: Path
    image: Path = Path()
    code_dir: Path = Path()
    hosts: dict[str, Host] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    # --- Building -----------------------------------------------------------------------

    def prepare(self) -> None:
        ensure_tools()
        self.image = build_image()
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.code_dir = self.run_dir / "code"
        clone_code(self.code_dir)
        # Local media on a directory every web and worker host mounts (an NFS export in
        # production): what a worker writes, nginx on a web host serves.
        for shared in ("media", "originals"):
            path = self.run_dir / "shared" / shared
            path.mkdir(parents=True)
            os.chown(path, 990, 990)
            path.chmod(0o750)
        self.passwords = {
            "secret_key": secrets.token_urlsafe(50),
            "postgres": secrets.token_hex(16),
            "redis": secrets.token_hex(16),
        }
        # One certificate for the site's name, on the load balancer and every web host
        # (which the load balancer verifies as the site's).
        tls = self.run_dir / "tls"
        tls.mkdir()
        run(
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={SITE}",
            "-addext",
            f"subjectAltName=DNS:{SITE}",
            "-keyout",
            str(tls / "privkey.pem"),
            "-out",
            str(tls / "fullchain.pem"),
        )
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{HOST_ADDRESS}/24", "dev", BRIDGE)
        for address in CLIENT_ADDRESSES:
            run("ip", "addr", "add", f"{address}/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")

    def add(self, name: str, number: int, *roles: str) -> Host:
        assert len(name) <= 12, name
        host = Host(self, name, number, roles)
        self.hosts[name] = host
        host.mount()
        self.configure(host)
        return host

    def binds(self, host: Host) -> list[str]:
        if not {"web", "worker"} & set(host.roles):
            return []
        shared = self.run_dir / "shared"
        return [
            f"--bind={shared / 'media'}:/var/lib/pipeline/media",
            f"--bind={shared / 'originals'}:/var/lib/pipeline/originals",
        ]

    def database_host(self) -> Host:
        return next(h for h in self.hosts.values() if "database" in h.roles)

    def redis_host(self) -> Host:
        return next(h for h in self.hosts.values() if "redis" in h.roles)

    def web_hosts(self) -> list[Host]:
        return [h for h in self.hosts.values() if "web" in h.roles]

    def entry(self) -> Host:
        """Where clients reach the site: the load balancer, or the only web host."""
        return next((h for h in self.hosts.values() if "lb" in h.roles), self.web_hosts()[0])

    def sentinel_hosts(self) -> list[Host]:
        return [h for h in self.hosts.values() if "sentinel" in h.roles]

    def environment(self) -> str:
        """/etc/pipeline/pipeline.env: deploy/env.example with the values README tells an
        operator to fill in (and the fast job timings above)."""
        values = {
            "DJANGO_SECRET_KEY": self.passwords["secret_key"],
            "DJANGO_ALLOWED_HOSTS": SITE,
            "DATABASE_URL": (
                f"postgres://pipeline:{self.passwords['postgres']}@"
                f"{self.database_host().address}:5432/pipeline?connect_timeout=5"
            ),
            "REDIS_URL": f"redis://:{self.passwords['redis']}@{self.redis_host().address}:6379/0",
            **FAST_JOBS,
        }
        if self.sentinel_hosts():
            # README "Several machines": the Sentinels instead of a server.
            values["REDIS_SENTINELS"] = ",".join(
                f"{h.address}:26379" for h in self.sentinel_hosts()
            )
            values["REDIS_SENTINEL_MASTER"] = SENTINEL_MASTER
            values["REDIS_URL"] = f"redis://:{self.passwords['redis']}@{SENTINEL_MASTER}/0"
        text = (ROOT / "deploy" / "env.example").read_text()
        for key, value in values.items():
            text, found = re.subn(rf"^#?{key}=.*$", f"{key}={value}", text, count=1, flags=re.M)
            if not found:
                text += f"{key}={value}\n"
        return text

    def configure(self, host: Host) -> None:
        """The files of a host before it boots: name, address, and its role's settings."""
        host.write("/etc/hostname", host.name + "\n")
        host.write(
            "/etc/systemd/network/10-host0.network",
            f"[Match]\nName=host0\n\n[Network]\nAddress={host.address}/24\nLinkLocalAddressing=no\n",
        )
        wants = host.root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            (wants / "systemd-networkd.service").symlink_to(
                "/lib/systemd/system/systemd-networkd.service"
            )
        if "database" in host.roles:
            for conf in (host.root / "etc/postgresql").glob("*/main"):
                with (conf / "postgresql.conf").open("a") as file:
                    # The image was built beside this machine's PostgreSQL, so Debian gave
                    # the cluster the next free port: the README's is 5432.
                    file.write("listen_addresses = '*'\nport = 5432\n")
                with (conf / "pg_hba.conf").open("a") as file:
                    file.write(f"host pipeline pipeline {NETWORK}.0/24 scram-sha-256\n")
        if {"redis", "replica"} & set(host.roles):
            password = self.passwords["redis"]
            with (host.root / "etc/redis/redis.conf").open("a") as file:
                file.write(
                    f"bind 0.0.0.0\nprotected-mode no\nrequirepass {password}\n"
                    f'masterauth {password}\nsave ""\nappendonly no\n'
                )
                if "replica" in host.roles:
                    file.write(f"replicaof {self.redis_host().address} 6379\n")
        if "sentinel" in host.roles:
            conf = host.root / "etc/redis/sentinel.conf"
            kept = [line for line in conf.read_text().splitlines() if "mymaster" not in line]
            primary = self.redis_host().address
            kept += [
                "bind 0.0.0.0",
                "protected-mode no",
                f"sentinel monitor {SENTINEL_MASTER} {primary} 6379 2",
                f"sentinel auth-pass {SENTINEL_MASTER} {self.passwords['redis']}",
                f"sentinel down-after-milliseconds {SENTINEL_MASTER} {SENTINEL_DOWN_AFTER_MS}",
                f"sentinel failover-timeout {SENTINEL_MASTER} 10000",
            ]
            conf.write_text("\n".join(kept) + "\n")
        if {"web", "worker"} & set(host.roles):
            # README "Production": the environment file and the units.
            host.write("/etc/pipeline/pipeline.env", "")
            os.chown(host.root / "etc/pipeline/pipeline.env", 0, 990)
            host.write("/etc/pipeline/pipeline.env", self.environment(), 0o640)
            host.write("/etc/pipeline/web.env", "", 0o640)
            os.chown(host.root / "etc/pipeline/web.env", 0, 990)
            for unit in (ROOT / "deploy" / "systemd").iterdir():
                shutil.copy(unit, host.root / "etc/systemd/system" / unit.name)
        if "web" in host.roles:
            site = (ROOT / "deploy/nginx/pipeline.conf").read_text()
            balancer = next((h for h in self.hosts.values() if "lb" in h.roles), None)
            if balancer is not None:
                # README "Several machines", behind a load balancer: its address.
                site = site.replace(
                    "    # set_real_ip_from 10.0.0.5;", f"    set_real_ip_from {balancer.address};"
                )
                site = site.replace("    # real_ip_header", "    real_ip_header")
                assert f"set_real_ip_from {balancer.address};" in site
            self.install_site(host, "pipeline", site)
        if "lb" in host.roles:
            self.install_site(host, "pipeline-lb", (ROOT / "deploy/nginx/lb.conf").read_text())
            # The web hosts' certificate is the bed's own: the load balancer trusts it.
            with (host.root / "etc/ssl/certs/ca-certificates.crt").open("a") as file:
                file.write((self.run_dir / "tls" / "fullchain.pem").read_text())

    def install_site(self, host: Host, name: str, text: str) -> None:
        """An nginx site as README "Production" installs one, with the bed's certificate."""
        nginx = host.root / "etc/nginx"
        (nginx / "sites-available" / name).write_text(text)
        (nginx / "sites-enabled/default").unlink(missing_ok=True)
        with contextlib.suppress(FileExistsError):
            (nginx / "sites-enabled" / name).symlink_to(f"/etc/nginx/sites-available/{name}")
        live = host.root / "etc/letsencrypt/live" / SITE
        live.mkdir(parents=True, exist_ok=True)
        for pem in ("fullchain.pem", "privkey.pem"):
            shutil.copy(self.run_dir / "tls" / pem, live / pem)

    # --- Running ------------------------------------------------------------------------

    def start_services(self, host: Host) -> None:
        """After boot: what README "Production" runs on a host of this role."""
        if "database" in host.roles:
            host.sh("systemctl enable --now postgresql")
            wait_for(
                lambda: host.sh("pg_isready -q", check=False).returncode == 0, 60, "PostgreSQL"
            )
            host.sh(
                "runuser -u postgres -- psql -q -c "
                f"\"CREATE ROLE pipeline LOGIN PASSWORD '{self.passwords['postgres']}'\" && "
                "runuser -u postgres -- createdb --owner pipeline pipeline"
            )
        if {"redis", "replica"} & set(host.roles):
            host.sh("systemctl enable --now redis-server")
        if "sentinel" in host.roles:
            host.sh("systemctl enable --now redis-sentinel")
        if "web" in host.roles:
            host.sh("usermod -aG pipeline www-data && systemctl daemon-reload")
        if {"web", "lb"} & set(host.roles):
            host.sh("nginx -t -q && systemctl enable --now nginx")

    def migrate(self, host: Host) -> None:
        host.sh("/opt/pipeline/deploy/bin/pipeline-manage migrate --no-input -v 0", timeout=300)

    def create_user(self, host: Host, username: str, password: str) -> None:
        host.sh(
            "/opt/pipeline/deploy/bin/pipeline-manage createsuperuser --no-input "
            f"--username {username} --email {username}@example.com",
            DJANGO_SUPERUSER_PASSWORD=password,
        )

    def create_users(self, host: Host, users: list[tuple[str, str]]) -> None:
        """Ordinary users (the load's), in one manage.py process."""
        code = (
            "import json, os; from django.contrib.auth import get_user_model; "
            "[get_user_model().objects.create_user(name, password=password) "
            "for name, password in json.loads(os.environ['PIPELINE_USERS'])]"
        )
        host.sh(
            f"/opt/pipeline/deploy/bin/pipeline-manage shell -c {shlex.quote(code)}",
            PIPELINE_USERS=json.dumps(users),
        )

    def client(self, username: str, password: str, *, source: str = HOST_ADDRESS) -> httpx.Client:
        """A browser-like client of the site through its entry (the load balancer), over
        HTTPS (the production cookies are Secure), from address `source`, logged in through
        the form."""
        client = httpx.Client(
            base_url=f"https://{self.entry().address}",
            headers={"Host": SITE, "Referer": f"https://{SITE}/"},
            timeout=20,
            # The bed's own self-signed certificate.
            transport=httpx.HTTPTransport(local_address=source, verify=False),
        )
        return log_in(client, username, password)

    def psql(self, query: str) -> str:
        return (
            self.database_host()
            .sh(f'runuser -u postgres -- psql -d pipeline -tAc "{query}"')
            .stdout.strip()
        )

    def save_journals(self) -> None:
        """Each running host's journal, kept in run_dir/logs/ after the hosts are gone."""
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for host in self.hosts.values():
            with contextlib.suppress(Exception):
                if host.leader() is not None:
                    (logs / f"{host.name}.journal").write_text(
                        host.sh("journalctl --no-pager -o short-precise", check=False).stdout
                    )

    def destroy(self) -> None:
        self.save_journals()
        for host in self.hosts.values():
            with contextlib.suppress(Exception):
                host.destroy()
        run("ip", "link", "del", BRIDGE, check=False)
        for part in ("code", "hosts"):
            shutil.rmtree(self.run_dir / part, ignore_errors=True)


@contextlib.contextmanager
def cluster(run_dir: Path | None = None) -> Iterator[Cluster]:
    bed = Cluster(run_dir or VAR / "run")
    try:
        bed.prepare()
        yield bed
    finally:
        bed.destroy()


def seconds_until(condition: Callable[[], Any], timeout: float, what: str) -> float:
    """How long `condition` took to hold (a figure to print), failing after `timeout`."""
    start = time.monotonic()
    wait_for(condition, timeout, what, 0.2)
    return time.monotonic() - start

"""The systemd units, the worker instance names and the example environment, checked with
systemd's own tools and against the settings the site reads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.units import (
    DEPLOY,
    ENV_EXAMPLE,
    ROOT,
    SYSTEMD_PATH,
    UNITS,
    command,
    parse_env_file,
    parse_unit,
    render_units,
    to_checkout,
    unit_environment,
)

SERVICES = [
    "pipeline-web.service",
    "pipeline-worker@.service",
    "pipeline-metrics.service",
]
# The units whose processes report metrics, sharing one multiprocess directory per host.
METRICS_UNITS = ["pipeline-web.service", "pipeline-worker@.service", "pipeline-metrics.service"]
# Instances that systemd-analyze checks in place of the template.
INSTANCES = ["pipeline-worker@thumbnails-1.service", "pipeline-worker@compute_thumbnails-2.service"]
# systemd-analyze security's overall exposure (0 to 10; "OK" up to 4.9). The units score
# 1.1: what is left is the network (the services need it) and the host's root directory.
EXPOSURE_LIMIT = 2.0


@pytest.fixture(scope="session")
def systemd_analyze() -> str:
    """systemd-analyze, installed from Debian's packages if this machine lacks it."""
    found = shutil.which("systemd-analyze")
    if not found:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "systemd"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze is missing and could not be installed"
    return found


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    """deploy/systemd/ with this checkout's paths, an environment file, and the instances."""
    env_file = tmp_path / "pipeline.env"
    shutil.copy(ENV_EXAMPLE, env_file)
    units = tmp_path / "units"
    render_units(units, env_file)
    for instance in INSTANCES:
        (units / instance).symlink_to("pipeline-worker@.service")
    return units


def verify(systemd_analyze: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze, "verify", "--man=no", "--generators=no", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", "SYSTEMD_PAGER": "cat"},
    )


def test_every_unit_verifies_without_a_single_warning(systemd_analyze: str, rendered: Path) -> None:
    units = [
        p for p in sorted(rendered.iterdir()) if p.name != "pipeline-worker@.service"
    ]  # the template is verified through its instances
    assert {p.name for p in units} >= {
        "pipeline-web.service",
        "pipeline-workers.target",
        "pipeline-metrics.service",
        *INSTANCES,
    }
    result = verify(systemd_analyze, *units)
    # verify exits 0 on unknown keys and bad values: any line it prints is a finding.
    findings = (result.stdout + result.stderr).strip()
    assert not findings, findings
    assert result.returncode == 0


def test_verify_would_report_a_mistake(systemd_analyze: str, rendered: Path) -> None:
    # The check above is only as good as systemd-analyze's output: make sure it speaks here.
    broken = rendered / "pipeline-broken.service"
    text = (rendered / "pipeline-web.service").read_text()
    broken.write_text(text.replace("[Service]\n", "[Service]\nRestartt=always\n", 1))
    result = verify(systemd_analyze, broken)
    assert "Unknown key 'Restartt'" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "service",
    [
        "pipeline-web.service",
        *INSTANCES[1:],
        "pipeline-metrics.service",
        "pipeline-autoscale.service",
    ],
)
def test_services_are_hardened(systemd_analyze: str, rendered: Path, service: str) -> None:
    result = subprocess.run(
        [
            systemd_analyze,
            "security",
            "--offline=true",
            # In tenths: fail above EXPOSURE_LIMIT.
            f"--threshold={round(EXPOSURE_LIMIT * 10)}",
            "--no-pager",
            str(rendered / service),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", output)
    assert match, output
    assert result.returncode == 0, output
    assert float(match[1]) <= EXPOSURE_LIMIT, output


def test_units_restart_stop_gracefully_and_share_one_environment() -> None:
    web = parse_unit(UNITS / "pipeline-web.service")
    worker = parse_unit(UNITS / "pipeline-worker@.service")
    target = parse_unit(UNITS / "pipeline-workers.target")
    assert web.value("Service", "Restart") == "on-failure"
    # A worker that exits 0 unasked is restarted too (a stop by systemd never is).
    assert worker.value("Service", "Restart") == "always"
    for unit in (web, worker):
        assert unit.value("Service", "EnvironmentFile") == "/etc/pipeline/pipeline.env"
        assert unit.value("Service", "ProtectSystem") == "strict"
        assert unit.value("Service", "NoNewPrivileges") == "yes"
        assert unit.value("Service", "PrivateTmp") == "yes"
        # Writable: the state directory (STATE_DIR, with media and static under it) only.
        assert unit.value("Service", "StateDirectory") == "pipeline"
        assert not unit.values("Service", "ReadWritePaths")
    assert parse_env_file(ENV_EXAMPLE)["STATE_DIR"] == "/var/lib/pipeline"

    # The worker's stop timeout outlasts the grace its running job gets, with room to hand
    # the job back and exit.
    grace = float(re.findall(r"^#?JOBS_SHUTDOWN_GRACE=(\S+)$", ENV_EXAMPLE.read_text(), re.M)[0])
    assert grace == 25
    assert float(worker.value("Service", "TimeoutStopSec")) >= grace + 15
    assert worker.value("Service", "KillSignal") == "SIGTERM"

    # The target starts and stops every enabled worker.
    assert worker.value("Unit", "PartOf") == "pipeline-workers.target"
    assert worker.value("Install", "WantedBy") == "pipeline-workers.target"
    assert target.value("Install", "WantedBy") == "multi-user.target"

    # daphne behind nginx: loopback only, client addresses from nginx's headers.
    daphne = command(web)
    assert daphne[0] == to_checkout("/opt/pipeline/.venv/bin/daphne")
    assert "--proxy-headers" in daphne
    endpoint = daphne[daphne.index("--endpoint") + 1].split(":")
    assert endpoint[0] == "tcp"
    listen = dict(field.split("=") for field in endpoint[1:])
    assert listen == {"port": "8001", "interface": "127.0.0.1", "backlog": "4096"}
    assert daphne[daphne.index("--websocket_connect_timeout") + 1] == "30"
    assert daphne[-1] == "project.asgi:application"


def test_the_units_of_a_host_share_one_metrics_directory_kept_until_boot() -> None:
    directories = set()
    for name in METRICS_UNITS:
        unit = parse_unit(UNITS / name)
        env = unit_environment(unit, ENV_EXAMPLE)
        # systemd makes /run/<RuntimeDirectory> (a tmpfs: empty at each boot) for the unit,
        # and keeps it when the unit stops: other units' processes are still writing there,
        # and a dead process's counts must stay in the host's totals.
        runtime = unit.value("Service", "RuntimeDirectory")
        assert env["PROMETHEUS_MULTIPROC_DIR"] == f"/run/{runtime}", name
        assert unit.value("Service", "RuntimeDirectoryPreserve") == "yes", name
        directories.add(env["PROMETHEUS_MULTIPROC_DIR"])
    assert len(directories) == 1, directories
    # The operators' manage.py reports no metrics: not in the file.
    assert "PROMETHEUS_MULTIPROC_DIR" not in parse_env_file(ENV_EXAMPLE)


def test_the_metrics_unit_serves_the_host_with_manage_py_metrics_server() -> None:
    unit = parse_unit(UNITS / "pipeline-metrics.service")
    argv = command(unit)
    assert argv[:3] == [
        to_checkout("/opt/pipeline/.venv/bin/python"),
        str(ROOT / "manage.py"),
        "metrics_server",
    ]
    # Prometheus reaches it from the monitoring network; the access rule guards it.
    assert argv[argv.index("--bind") + 1] == "0.0.0.0"  # noqa: S104
    # The port the README tells Prometheus to scrape.
    port = argv[argv.index("--port") + 1]
    assert f"worker1.internal:{port}" in (ROOT / "README.md").read_text()
    assert unit.value("Service", "ProtectSystem") == "strict"
    assert unit.value("Service", "Restart") == "on-failure"
    assert unit.value("Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize(
    ("instance", "channels"),
    [
        ("thumbnails-3", ["thumbnails"]),
        ("chat-messages-1", ["chat-messages"]),
        ("compute_thumbnails-2", ["compute", "thumbnails"]),
        ("thumbnails_compute_chat-messages-10", ["thumbnails", "compute", "chat-messages"]),
    ],
)
def test_a_worker_instance_runs_runworker_for_the_channels_it_names(
    instance: str, channels: list[str]
) -> None:
    argv = command(parse_unit(UNITS / "pipeline-worker@.service"), instance=instance)
    result = subprocess.run(
        [*argv[:-1], "--dry-run", argv[-1]], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    # The unit's own Python runs manage.py runworker (exec: it is the unit's main process).
    assert result.stdout.split() == [argv[0], str(ROOT / "manage.py"), "runworker", *channels]


@pytest.mark.parametrize(
    ("instance", "reason"),
    [
        ("thumbnails", "is not CHANNEL[_CHANNEL...]-N"),
        ("thumbnail-1", "no channel 'thumbnail'"),
        ("compute_compute-1", "names a channel twice"),
        ("compute__thumbnails-1", "'' is not a channel name"),
    ],
)
def test_a_bad_worker_instance_fails_at_start_saying_why(instance: str, reason: str) -> None:
    worker = parse_unit(UNITS / "pipeline-worker@.service")
    result = subprocess.run(
        command(worker, instance=instance), capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    # The exit status the unit does not restart on: the instance stays failed, with the reason.
    assert result.returncode == int(worker.value("Service", "RestartPreventExitStatus"))
    assert reason in result.stderr
    assert "Traceback" not in result.stderr


def settings_variables() -> set[str]:
    """Every environment variable project/settings.py reads."""
    source = (ROOT / "project" / "settings.py").read_text()
    reads = re.findall(
        r"(?:os\.environ\.get|os\.environ\[|env_bool|env_float|env_list|required)\(?\s*\"([A-Z0-9_]+)\"",
        source,
    )
    reads += re.findall(r"\"([A-Z0-9_]+)\" in os\.environ", source)
    return set(reads)


def test_env_example_names_every_setting_the_site_reads() -> None:
    variables = settings_variables()
    assert {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "JOBS_SHUTDOWN_GRACE"} <= variables
    documented = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    assert variables - documented == set(), "add these to deploy/env.example"
    # boto3 reads the S3 credentials itself.
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= documented


def pipeline_manage(tmp_path: Path, env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY / "bin" / "pipeline-manage"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        # A bare environment, as under systemd: only what the environment file says counts.
        env={
            "PATH": SYSTEMD_PATH,
            "PIPELINE_ENV_FILE": str(env_file),
            "PIPELINE_PYTHON": sys.executable,
            "PIPELINE_USER": subprocess.run(
                ["id", "-un"], capture_output=True, text=True, check=True
            ).stdout.strip(),
        },
    )


def production_env(tmp_path: Path, secret: str) -> Path:
    """deploy/env.example with a secret filled in and the state kept under tmp_path."""
    text = ENV_EXAMPLE.read_text()
    text = text.replace("\nDJANGO_SECRET_KEY=\n", f"\nDJANGO_SECRET_KEY={secret}\n")
    text = text.replace("\nSTATE_DIR=/var/lib/pipeline\n", f"\nSTATE_DIR={tmp_path / 'state'}\n")
    env_file = tmp_path / "pipeline.env"
    env_file.write_text(text)
    return env_file


def test_production_settings_pass_check_deploy_without_a_warning(tmp_path: Path) -> None:
    env_file = production_env(tmp_path, "kq3V0b8Yh1xPz-LwT_4nR7cJm2Ud9sEaFgHiQoZ5yXtKvBnMlW6")
    assert parse_env_file(env_file)["DJANGO_DEBUG"] == "0"
    result = pipeline_manage(tmp_path, env_file, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_example_environment_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    env_file = production_env(tmp_path, "")
    result = pipeline_manage(tmp_path, env_file, "check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_a_worker_started_without_a_secret_says_which_variable_is_missing() -> None:
    worker = parse_unit(UNITS / "pipeline-worker@.service")
    result = subprocess.run(
        command(worker, instance="thumbnails-1"),
        env=unit_environment(worker, ENV_EXAMPLE),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()  # one line for the journal, no traceback
    assert line.startswith("settings: DJANGO_SECRET_KEY is not set")


def test_the_autoscaler_runs_manage_py_autoscale_from_its_timer_with_a_memory_bound() -> None:
    service = parse_unit(UNITS / "pipeline-autoscale.service")
    timer = parse_unit(UNITS / "pipeline-autoscale.timer")
    argv = command(service)
    assert argv[1:] == [str(ROOT / "manage.py"), "autoscale"]
    assert service.value("Service", "Type") == "oneshot"
    assert service.value("Service", "EnvironmentFile") == "/etc/pipeline/pipeline.env"
    # root only to ask systemd; nothing else.
    assert service.value("Service", "CapabilityBoundingSet") == ""
    assert service.value("Service", "ProtectSystem") == "strict"
    assert service.value("Service", "MemoryMax")
    assert service.value("Service", "OOMPolicy") == "stop"
    assert timer.value("Timer", "OnUnitActiveSec") == "15s"
    assert timer.value("Install", "WantedBy") == "timers.target"

"""What deploy/ gives each process: nginx's limits in front of daphne, each unit only the secrets
it needs, static files that the web server cannot rewrite, a Redis that asks for a password."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.deploy.test_nginx import Nginx, https_client
from tests.deploy.test_units import EXPOSURE_LIMIT, rendered, systemd_analyze
from tests.deploy.units import ENV_EXAMPLE, NGINX_SITE, UNITS, command, parse_env_file, parse_unit
from tests.processes import Process

__all__ = ["rendered", "systemd_analyze"]

WEB = parse_unit(UNITS / "pipeline-web.service")
COLLECTSTATIC = "pipeline-collectstatic.service"
OTHERS = [parse_unit(UNITS / name) for name in ["pipeline-worker@.service"]]
SHARED_ENV = "/etc/pipeline/pipeline.env"
WEB_ENV = "/etc/pipeline/web.env"
# What only the web server uses: mail for password resets, the token of /metrics.
WEB_SECRETS = {
    "METRICS_TOKEN",
    "DJANGO_EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "DEFAULT_FROM_EMAIL",
}
STATIC_ROOT = "/var/lib/pipeline/static"
RESUMABLE_JS = Path(__file__).resolve().parents[2] / "static" / "media_tasks" / "resumable.js"


def locations() -> dict[str, str]:
    """The HTTPS server's `location` blocks of the nginx site, by their match."""
    text = NGINX_SITE.read_text()
    https = text[text.index("listen 443") :]
    return {
        match[1].strip(): match[2]
        for match in re.finditer(r"^\s*location ([^{]+)\{(.*?)^\s*\}", https, re.M | re.S)
    }


def directive(block: str, name: str) -> list[str]:
    return re.findall(rf"^\s*{name}\s+([^;]+);", block, re.M)


def test_nginx_hides_its_version_and_keeps_large_bodies_to_the_upload_api() -> None:
    text = NGINX_SITE.read_text()
    assert re.search(r"^server_tokens off;", text, re.M)
    https = text[text.index("listen 443") :]
    server_level = re.sub(r"^\s*location[^{]+\{.*?^\s*\}", "", https, flags=re.M | re.S)
    assert directive(server_level, "client_max_body_size") == ["1m"]
    large = {
        match: block
        for match, block in locations().items()
        if directive(block, "client_max_body_size")
    }
    assert list(large) == ["= /api/uploads/", "/api/uploads/tus/"]
    assert directive(large["= /api/uploads/"], "client_max_body_size") == ["26m"]
    # A resumable upload's chunk: the page's 4 MiB and a little room.
    chunk = re.search(r"CHUNK_SIZE = (\d+) \* 1024 \* 1024", RESUMABLE_JS.read_text())
    assert chunk, "static/media_tasks/resumable.js names no CHUNK_SIZE"
    assert directive(large["/api/uploads/tus/"], "client_max_body_size") == [
        f"{int(chunk[1]) + 1}m"
    ]
    assert directive(large["/api/uploads/tus/"], "limit_req")


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/login/",
        "/accounts/signup/",
        "/accounts/password_reset/",
        "/admin/login/",
        "/api/uploads/",
    ],
)
def test_nginx_limits_posts_per_address_on_the_forms_and_uploads(path: str) -> None:
    block = locations()[f"= {path}"]
    (limit,) = directive(block, "limit_req")
    zone = re.search(r"zone=(\w+)", limit)
    assert zone
    text = NGINX_SITE.read_text()
    assert re.search(rf"limit_req_zone \$pipeline_post_client zone={zone[1]}:", text)
    assert "POST    $binary_remote_addr;" in text
    assert directive(block, "proxy_pass") == ["http://pipeline_daphne"]


def test_nginx_limits_open_websockets_per_address() -> None:
    (limit,) = directive(locations()["/ws/"], "limit_conn")
    zone, count = limit.split()
    assert re.search(rf"limit_conn_zone \$binary_remote_addr zone={zone}:", NGINX_SITE.read_text())
    assert 1 <= int(count) <= 100


def test_only_the_web_server_gets_the_web_secrets() -> None:
    assert WEB.values("Service", "EnvironmentFile") == [f"-{WEB_ENV}", SHARED_ENV]
    for unit in [*OTHERS, parse_unit(UNITS / COLLECTSTATIC)]:
        assert unit.values("Service", "EnvironmentFile") == [SHARED_ENV], unit.name
    # The shared file only mentions them (commented out): every unit reads what it sets.
    assert not WEB_SECRETS & set(parse_env_file(ENV_EXAMPLE))
    documented = set(re.findall(r"^#([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    assert documented >= WEB_SECRETS


def memory_bytes(value: str) -> int:
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


def test_every_service_has_a_memory_bound_and_stops_whole_when_it_passes_it() -> None:
    services = sorted(UNITS.glob("*.service"))
    assert len(services) >= 4
    for path in services:
        unit = parse_unit(path)
        bound = memory_bytes(unit.value("Service", "MemoryMax"))
        assert 0 < bound <= 2**30, path.name
        assert unit.value("Service", "MemorySwapMax") == "0", path.name
        assert unit.value("Service", "OOMPolicy") == "stop", path.name
        if high := unit.values("Service", "MemoryHigh"):
            assert memory_bytes(high[0]) < bound, path.name
    # The long-running ones come back after the kernel killed them.
    for unit in [WEB, *OTHERS]:
        assert unit.value("Service", "Restart") in {"on-failure", "always"}, unit.name


def test_the_example_redis_url_has_a_password() -> None:
    redis = urlsplit(parse_env_file(ENV_EXAMPLE)["REDIS_URL"])
    assert redis.password
    assert redis.hostname == "127.0.0.1"


def test_the_web_server_cannot_write_the_static_files() -> None:
    assert parse_env_file(ENV_EXAMPLE).get("STATIC_ROOT", STATIC_ROOT) == STATIC_ROOT
    assert re.search(rf"^\s*alias {STATIC_ROOT}/;", NGINX_SITE.read_text(), re.M)
    # daphne's mount namespace has it read-only, and nothing of the web unit collects.
    assert WEB.values("Service", "ReadOnlyPaths") == [STATIC_ROOT]
    assert not WEB.values("Service", "ExecStartPre")
    # A unit of its own writes them, before the web server starts (each time).
    collect = parse_unit(UNITS / COLLECTSTATIC)
    assert collect.value("Service", "Type") == "oneshot"
    assert command(collect)[-4:] == ["collectstatic", "--no-input", "--verbosity", "0"]
    assert COLLECTSTATIC in WEB.value("Unit", "Requires").split()
    assert COLLECTSTATIC in " ".join(WEB.values("Unit", "After")).split()
    assert not collect.values("Service", "ReadOnlyPaths")
    # Workers and housekeeping see them read-only too, where they exist.
    for unit in OTHERS:
        assert unit.values("Service", "ReadOnlyPaths") == [f"-{STATIC_ROOT}"], unit.name


def test_the_collectstatic_unit_is_hardened(systemd_analyze: str, rendered: Path) -> None:
    result = subprocess.run(
        [
            systemd_analyze,
            "security",
            "--offline=true",
            f"--threshold={round(EXPOSURE_LIMIT * 10)}",
            "--no-pager",
            str(rendered / COLLECTSTATIC),
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


@pytest.mark.postgres
@pytest.mark.slow
def test_real_nginx_refuses_large_form_bodies_floods_and_names_no_version(
    nginx: tuple[Nginx, Process],
) -> None:
    proxy, _ = nginx
    client = https_client(proxy)
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert page.headers.get("Server") == "nginx"

    # 2 MB at a form: refused by nginx before daphne reads it.
    large = client.post("/accounts/login/", content=b"x" * (2 * 1024 * 1024))
    assert large.status_code == 413
    assert "nginx/" not in large.text

    # A flood of log-in posts: the burst (10) passes on to Django, the rest get 429 at once.
    statuses = [
        client.post("/accounts/login/", data={"username": "x", "password": "y"}).status_code
        for _ in range(30)
    ]
    assert statuses.count(429) >= 15, statuses
    # Reading the form is not limited.
    assert client.get("/accounts/login/").status_code == 200
    # The flood does not spill over to other paths.
    assert client.get("/healthz").status_code == 200


@pytest.mark.postgres
@pytest.mark.slow
def test_real_nginx_still_passes_a_large_upload_to_the_api(nginx: tuple[Nginx, Process]) -> None:
    proxy, _ = nginx
    # Not logged in: Django answers (a 403 of its own), nginx let the 2 MB body through.
    response = https_client(proxy).post(
        "/api/uploads/", files={"image": ("big.jpg", b"x" * (2 * 1024 * 1024), "image/jpeg")}
    )
    assert response.status_code != 413
    assert isinstance(response, httpx.Response)

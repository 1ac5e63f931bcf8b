"""deploy/nginx/pipeline.conf in a real nginx, in front of the web unit's daphne: TLS,
websockets, static and media files, the body size limit, and the probes' default server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.deploy.deployment import SITE, Deployment, log_in
from tests.deploy.units import NGINX_SITE
from tests.media_tasks import images
from tests.processes import Process, free_port, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """nginx, installed from Debian's packages if this machine lacks it (never started by
    the package: the test runs its own, on loopback ports)."""
    found = shutil.which("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx")
    if not found:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "nginx"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        found = shutil.which("nginx") or "/usr/sbin/nginx"
        # Where the package's own service was started (no policy-rc.d), stop it again.
        if Path("/run/nginx.pid").exists():
            subprocess.run([found, "-s", "quit"], check=False)
    assert os.access(found, os.X_OK), "nginx is missing and could not be installed"
    return found


@dataclass
class Nginx:
    http_port: int
    https_port: int
    directory: Path


def render_site(
    daphne_port: int, state: Path, certificate: Path, key: Path, ports: tuple[int, int]
) -> str:
    """The site with loopback ports, this test's daphne, state directory and certificate."""
    http_port, https_port = ports
    text = NGINX_SITE.read_text()
    text = re.sub(r"^\s*listen \[::\].*\n", "", text, flags=re.M)
    text = re.sub(r"\blisten 80\b", f"listen 127.0.0.1:{http_port}", text)
    text = re.sub(r"\blisten 443\b", f"listen 127.0.0.1:{https_port}", text)
    text = text.replace("server 127.0.0.1:8001;", f"server 127.0.0.1:{daphne_port};")
    text = text.replace("/var/lib/pipeline/", f"{state}/")
    text = re.sub(r"ssl_certificate .*;", f"ssl_certificate {certificate};", text)
    text = re.sub(r"ssl_certificate_key .*;", f"ssl_certificate_key {key};", text)
    directives = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    for install_path in ["8001", "/var/lib/pipeline", "/etc/letsencrypt", " 80;", " 443 "]:
        assert install_path not in directives, f"{install_path} left in the rendered site"
    return text


def nginx_conf(directory: Path, site: Path) -> str:
    """The parts of Debian's /etc/nginx/nginx.conf that the site relies on, in `directory`."""
    return f"""
daemon off;
master_process off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {directory}/access.log;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {site};
}}
"""


@pytest.fixture
def nginx(
    nginx_binary: str, deployment: Deployment, tmp_path: Path
) -> Iterator[tuple[Nginx, Process]]:
    web = deployment.web()
    directory = tmp_path / "nginx"
    directory.mkdir()
    certificate, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={SITE}",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
    )
    ports = (free_port(), free_port())
    site = directory / "pipeline.conf"
    site.write_text(render_site(web.port or 0, deployment.state, certificate, key, ports))
    conf = directory / "nginx.conf"
    conf.write_text(nginx_conf(directory, site))

    checked = subprocess.run(
        [nginx_binary, "-t", "-p", str(directory), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    # nginx -t reports to stderr; anything beyond its two success lines is a finding.
    findings = [
        line
        for line in checked.stderr.splitlines()
        if "syntax is ok" not in line and "test is successful" not in line
    ]
    assert not findings, findings

    server = deployment.processes.start(
        "nginx", [nginx_binary, "-p", str(directory), "-c", str(conf)]
    )

    def listening() -> bool:
        assert server.alive(), server.output() + (directory / "error.log").read_text()
        try:
            httpx.get(f"http://127.0.0.1:{ports[0]}/healthz", timeout=1)
        except httpx.TransportError:
            return False
        return True

    wait_for(listening, 10, "nginx to listen")
    yield Nginx(*ports, directory), web
    server.signal(signal.SIGQUIT)


def https_client(proxy: Nginx) -> httpx.Client:
    """A client for https://SITE/ that reaches this test's nginx (TLS with SNI for SITE)."""

    class ToNginx(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            request.extensions = {**request.extensions, "sni_hostname": SITE}
            proxied = httpx.Request(
                request.method,
                request.url.copy_with(host="127.0.0.1", port=proxy.https_port),
                headers=request.headers,
                stream=request.stream,
                extensions=request.extensions,
            )
            return super().handle_request(proxied)

    return httpx.Client(base_url=f"https://{SITE}", transport=ToNginx(verify=False), timeout=10)


def test_nginx_serves_the_site_and_its_files_safely(nginx: tuple[Nginx, Process]) -> None:
    proxy, _ = nginx
    client = https_client(proxy)

    health = client.get("/healthz")
    assert health.status_code == 200, health.text
    assert health.json() == {"database": "ok", "channel_layer": "ok"}
    # Pages come from Django over HTTPS (X-Forwarded-Proto), with its security headers.
    login = client.get("/accounts/login/")
    assert login.status_code == 200
    assert "Strict-Transport-Security" in login.headers

    # Static files, collected by pipeline-collectstatic.service: hashed names are cached for good.
    css = re.search(r'href="(/static/css/site\.[0-9a-f]{12}\.css)"', login.text)
    assert css, login.text
    static = client.get(css[1])
    assert static.status_code == 200
    assert static.headers["Content-Type"].startswith("text/css")
    assert "immutable" in static.headers["Cache-Control"]
    assert client.get("/static/css/site.css").status_code == 200

    # /metrics under the site's name (HTTPS, perhaps through a load balancer) wants the token:
    # no address is enough there, loopback's included, nor one a client claims.
    assert client.get("/metrics").status_code == 403
    spoofed = client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert spoofed.status_code == 403


def test_user_media_cannot_run_scripts_in_the_sites_origin(
    nginx: tuple[Nginx, Process], deployment: Deployment
) -> None:
    proxy, _ = nginx
    media = deployment.state / "media" / "uploads"
    media.mkdir(parents=True)
    (media / "page.html").write_text("<script>alert(document.cookie)</script>")
    (media / "image.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>')
    (media / "thumb.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    client = https_client(proxy)

    for name in ["page.html", "image.svg"]:
        response = client.get(f"/media/uploads/{name}")
        assert response.status_code == 200
        # Not a type a browser renders as a page, never sniffed into one, and sandboxed.
        assert response.headers["Content-Type"] == "application/octet-stream", name
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    image = client.get("/media/uploads/thumb.webp")
    assert image.headers["Content-Type"] == "image/webp"
    assert "sandbox" in image.headers["Content-Security-Policy"]
    assert client.get("/media/uploads/missing.webp").status_code == 404


def test_originals_reach_their_owner_only_through_the_api(
    nginx: tuple[Nginx, Process],
    deployment: Deployment,
    user: Any,
    other_user: Any,
    password: str,
) -> None:
    from media_tasks.models import Upload

    proxy, _ = nginx
    photo = images.gps_jpeg()
    stored = deployment.state / "originals" / "originals" / "abc.jpg"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(photo)
    upload = Upload.objects.create(
        owner=user,
        original="originals/abc.jpg",
        original_name="trip.jpg",
        format="JPEG",
        content_type="image/jpeg",
        width=320,
        height=240,
        bytes=len(photo),
    )
    owner = log_in(https_client(proxy), user.username, password)
    served = owner.get(f"/api/uploads/{upload.pk}/original")
    assert served.status_code == 200
    # The file itself, GPS block and all (it is the owner's), handed over by nginx.
    assert served.content == photo
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["Cache-Control"] == "private, no-store"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert "X-Accel-Redirect" not in served.headers
    # Nobody else: not another user, not by the internal location, not as media.
    other = log_in(https_client(proxy), other_user.username, password)
    assert other.get(f"/api/uploads/{upload.pk}/original").status_code == 404
    anonymous = https_client(proxy)
    assert anonymous.get(f"/api/uploads/{upload.pk}/original").status_code == 401
    assert anonymous.get("/internal/originals/originals/abc.jpg").status_code == 404
    assert anonymous.get("/media/originals/abc.jpg").status_code == 404


def test_an_upload_over_the_limit_is_refused_by_nginx_with_json(
    nginx: tuple[Nginx, Process],
) -> None:
    proxy, _ = nginx
    # The upload API's own limit (the site's default is smaller).
    limit = re.search(
        r"location = /api/uploads/ \{[^}]*?client_max_body_size (\d+)m;", NGINX_SITE.read_text()
    )
    assert limit
    too_big = b"x" * ((int(limit[1]) + 1) * 1024 * 1024)
    response = https_client(proxy).post(
        "/api/uploads/", files={"image": ("huge.jpg", too_big, "image/jpeg")}
    )
    assert response.status_code == 413
    assert "larger than this server accepts" in response.json()["error"]


def test_websockets_pass_through_nginx(nginx: tuple[Nginx, Process]) -> None:
    proxy, _ = nginx
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    async def ping() -> dict[str, object]:
        async with websockets.connect(
            f"wss://{SITE}/ws/ping/",
            origin=websockets.Origin(f"https://{SITE}"),
            ssl=context,
            host="127.0.0.1",
            port=proxy.https_port,
            server_hostname=SITE,
        ) as ws:
            await ws.send(json.dumps({"hello": "through nginx"}))
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 5)))

    assert asyncio.run(ping()) == {"type": "pong", "echo": {"hello": "through nginx"}, "user": None}


def test_probes_by_ip_get_healthz_and_nothing_else(nginx: tuple[Nginx, Process]) -> None:
    proxy, web = nginx
    by_ip = {"Host": "10.0.0.5"}
    # Straight to daphne, a Host outside ALLOWED_HOSTS is a 400 ...
    direct = httpx.get(f"{web.url}/healthz", headers=by_ip)
    assert direct.status_code == 400
    # ... so nginx's default server answers probes by IP under the site's own name.
    probe = httpx.get(f"http://127.0.0.1:{proxy.http_port}/healthz", headers=by_ip)
    assert probe.status_code == 200, probe.text
    assert probe.json()["channel_layer"] == "ok"
    assert (
        httpx.get(f"http://127.0.0.1:{proxy.http_port}/metrics", headers=by_ip).status_code == 200
    )
    # Anything else there: the connection is closed without an answer.
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"http://127.0.0.1:{proxy.http_port}/admin/", headers=by_ip)
    # Plain HTTP for the site's name goes to HTTPS.
    plain = httpx.get(
        f"http://127.0.0.1:{proxy.http_port}/accounts/login/?next=/", headers={"Host": SITE}
    )
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://{SITE}/accounts/login/?next=/"

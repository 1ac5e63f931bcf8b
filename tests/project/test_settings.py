"""Settings come from the environment; production refuses to start without its secrets."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.processes import ROOT

SHOW = (
    "import django, json; from django.conf import settings; django.setup(); "
    "print(json.dumps({'db': settings.DATABASES['default']['ENGINE'], "
    "'layer': settings.CHANNEL_LAYERS['default'], 'debug': settings.DEBUG, "
    "'hosts': settings.ALLOWED_HOSTS}, default=str))"
)


def run_settings(tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "MEDIA_", "AWS_"))
    }
    clean.update(DJANGO_SETTINGS_MODULE="project.settings", STATE_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_nothing_set_gives_the_embedded_default(tmp_path) -> None:
    import json

    result = run_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["db"] == "django.db.backends.sqlite3"
    assert shown["layer"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    assert shown["debug"] is True
    # The generated development secret is kept, so logins survive a restart.
    assert (tmp_path / "dev-secret-key").read_text().strip()


def test_urls_select_postgresql_and_redis_with_a_safe_socket_timeout(tmp_path) -> None:
    import json

    result = run_settings(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/app",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["db"] == "django.db.backends.postgresql"
    layer = shown["layer"]
    assert layer["BACKEND"] == "project.layers.RedisChannelLayer"
    host = layer["CONFIG"]["hosts"][0]
    assert host["address"] == "redis://127.0.0.1:6379/0"
    # channels-redis blocks 5 s in BZPOPMIN: the socket must wait longer than that.
    assert host["socket_timeout"] > 5
    assert host["max_connections"] > 100


def test_sentinels_give_the_layer_a_sentinel_managed_primary(tmp_path) -> None:
    import json

    result = run_settings(
        tmp_path,
        REDIS_SENTINELS="10.0.0.21:26379, 10.0.0.22:26379,10.0.0.23:26380",
        REDIS_SENTINEL_MASTER="pipeline",
        REDIS_SENTINEL_PASSWORD="sentinel-secret",
        REDIS_URL="redis://:primary%2Fsecret@pipeline/3",
    )
    assert result.returncode == 0, result.stderr
    host = json.loads(result.stdout)["layer"]["CONFIG"]["hosts"][0]
    assert host["master_name"] == "pipeline"
    assert host["sentinels"] == [["10.0.0.21", 26379], ["10.0.0.22", 26379], ["10.0.0.23", 26380]]
    assert (host["db"], host["password"]) == (3, "primary/secret")
    assert host["sentinel_kwargs"]["password"] == "sentinel-secret"
    assert host["socket_timeout"] > 5
    # A Sentinel that hangs must not hold a reconnect up for long.
    assert host["sentinel_kwargs"]["socket_timeout"] <= 2


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"REDIS_SENTINELS": "10.0.0.21:26379", "REDIS_URL": "redis://m/0"},
            "REDIS_SENTINEL_MASTER",
        ),
        ({"REDIS_SENTINELS": "10.0.0.21:26379", "REDIS_SENTINEL_MASTER": "m"}, "REDIS_URL"),
        ({"REDIS_SENTINELS": "10.0.0.21", "REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS"),
    ],
)
def test_sentinel_settings_that_cannot_work_stop_the_start(tmp_path, env, named) -> None:
    result = run_settings(tmp_path, **env)
    assert result.returncode != 0
    assert named in result.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DJANGO_ALLOWED_HOSTS": "example.com"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "x" * 60}, "DJANGO_ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_to_start_without_its_secrets(tmp_path, env, named) -> None:
    result = run_settings(tmp_path, DJANGO_DEBUG="0", **env)
    assert result.returncode != 0
    assert f"{named} is not set" in result.stderr
    assert "production" in result.stderr


def test_production_starts_with_its_secrets(tmp_path) -> None:
    result = run_settings(
        tmp_path,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x" * 60,
        DJANGO_ALLOWED_HOSTS="example.com,www.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert '"debug": false' in result.stdout
    assert "www.example.com" in result.stdout


def test_a_malformed_boolean_is_named(tmp_path) -> None:
    result = run_settings(tmp_path, DJANGO_DEBUG="maybe")
    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


def test_the_csp_allows_the_buckets_origins_on_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    from project.settings import media_origins

    monkeypatch.delenv("MEDIA_ORIGINS", raising=False)
    aws = {"bucket_name": "pics", "custom_domain": None, "endpoint_url": None}
    assert media_origins({**aws, "region_name": "eu-west-1"}) == [
        "https://pics.s3.amazonaws.com",
        "https://pics.s3.eu-west-1.amazonaws.com",
    ]
    minio = {**aws, "endpoint_url": "https://s3.example.net:9000/", "region_name": None}
    assert media_origins(minio) == [
        "https://s3.example.net:9000",
        "https://pics.s3.example.net:9000",
    ]
    cdn = {**minio, "custom_domain": "media.example.net"}
    assert media_origins(cdn)[0] == "https://media.example.net"
    monkeypatch.setenv("MEDIA_ORIGINS", "https://a.example, https://b.example")
    assert media_origins(cdn) == ["https://a.example", "https://b.example"]

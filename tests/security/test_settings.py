"""Settings that guard secrets: the development secret is its owner's alone, HSTS preloading
is opted into, the e-mail backend and its credentials come from the environment."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.processes import ROOT

SHOW = (
    "import django, json; from django.conf import settings; django.setup(); "
    "print(json.dumps({name: getattr(settings, name, None) for name in ["
    "'SECRET_KEY', 'SECURE_HSTS_PRELOAD', 'SECURE_HSTS_SECONDS', 'SILENCED_SYSTEM_CHECKS', "
    "'EMAIL_BACKEND', 'EMAIL_HOST', 'EMAIL_PORT', 'EMAIL_HOST_USER', 'EMAIL_HOST_PASSWORD', "
    "'EMAIL_USE_TLS', 'DEFAULT_FROM_EMAIL']}))"
)
PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x" * 60,
    "DJANGO_ALLOWED_HOSTS": "example.com",
}


def show(state: Path, umask: int = 0o022, **env: str) -> dict[str, object]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "EMAIL_", "DEFAULT_FROM"))
    }
    clean.update(DJANGO_SETTINGS_MODULE="project.settings", STATE_DIR=str(state), **env)
    result = subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        # The usual umask, under which a plain write leaves a file readable by everyone.
        preexec_fn=lambda: os.umask(umask),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_development_secret_is_written_for_its_owner_only(tmp_path: Path) -> None:
    shown = show(tmp_path)
    secret = tmp_path / "dev-secret-key"
    assert mode(secret) == 0o600
    assert shown["SECRET_KEY"] == secret.read_text().strip()


def test_an_existing_readable_development_secret_is_made_private(tmp_path: Path) -> None:
    secret = tmp_path / "dev-secret-key"
    secret.write_text("kept-from-an-earlier-run-" + "k" * 40)
    secret.chmod(0o644)
    shown = show(tmp_path)
    assert mode(secret) == 0o600
    # The same secret: logins survive.
    assert shown["SECRET_KEY"] == "kept-from-an-earlier-run-" + "k" * 40


def test_hsts_preload_is_off_unless_asked_for(tmp_path: Path) -> None:
    default = show(tmp_path, **PRODUCTION)
    assert default["SECURE_HSTS_PRELOAD"] is False
    assert default["SECURE_HSTS_SECONDS"] == 31536000
    # check --deploy's "not preloaded" warning is silenced only while preload is off.
    assert default["SILENCED_SYSTEM_CHECKS"] == ["security.W021"]
    preload = show(tmp_path, DJANGO_HSTS_PRELOAD="1", **PRODUCTION)
    assert preload["SECURE_HSTS_PRELOAD"] is True
    assert preload["SILENCED_SYSTEM_CHECKS"] == []


def test_mail_goes_to_the_console_unless_the_environment_names_a_server(tmp_path: Path) -> None:
    assert show(tmp_path)["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    smtp = show(
        tmp_path,
        DJANGO_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="smtp.example.net",
        EMAIL_PORT="587",
        EMAIL_HOST_USER="pipeline",
        EMAIL_HOST_PASSWORD="mail-secret",
        EMAIL_USE_TLS="1",
        DEFAULT_FROM_EMAIL="Pipeline <noreply@example.net>",
    )
    assert smtp == {
        **smtp,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.net",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "pipeline",
        "EMAIL_HOST_PASSWORD": "mail-secret",
        "EMAIL_USE_TLS": True,
        "DEFAULT_FROM_EMAIL": "Pipeline <noreply@example.net>",
    }

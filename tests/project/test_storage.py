"""Production's static files: `collectstatic` with DEBUG off gives every ES module a hashed
name and rewrites the imports between modules to those names, so that a page gets all its
modules from one release (nginx caches hashed names for a year)."""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

from project.storage import ModuleManifestStaticFilesStorage
from tests.processes import ROOT

STATIC_SOURCES = ROOT / "static"
# The pages' entry modules, as their templates name them.
ENTRIES = ["media_tasks/main.js", "chat/chat.js"]
# What a browser reads as a module's dependency: `import ... from "x";` and `import "x";`.
IMPORT = re.compile(r"""^import\b[^;]*?["'](?P<url>[^"']+)["']\s*;""", re.MULTILINE)
HASHED = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{12})\.js$")
STATIC_URLS = (
    "import django; django.setup(); from django.templatetags.static import static; "
    f"print('\\n'.join(static(name) for name in {ENTRIES!r}))"
)


def production_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "MEDIA_", "AWS_", "STATIC_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="project.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="tests-only-secret-key-0123456789-abcdefghijklmnop",
        DJANGO_ALLOWED_HOSTS="example.com",
        STATE_DIR=str(tmp_path / "state"),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    return env


def run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_collected_modules_import_each_other_by_their_hashed_names(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    run([sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"], env)
    static_root = tmp_path / "static"
    manifest: dict[str, str] = json.loads((static_root / "staticfiles.json").read_text())["paths"]

    # The pages load the hashed entry modules.
    urls = run([sys.executable, "-c", STATIC_URLS], env).split()
    assert urls == [f"/static/{manifest[name]}" for name in ENTRIES]

    @cache
    def imports(hashed: str) -> tuple[str, ...]:
        """The original names of the modules that collected file `hashed` imports, each
        checked to be imported by its hashed name, the one in the manifest."""
        content = (static_root / hashed).read_text()
        stem = HASHED.match(hashed)
        assert stem, f"{hashed} has no hashed name"
        # The name is the content's: no pass of collectstatic left it behind.
        digest = hashlib.md5(content.encode(), usedforsecurity=False).hexdigest()[:12]
        assert stem["hash"] == digest, f"{hashed}: its name is not the hash of its content"
        found = []
        for url in IMPORT.findall(content):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(hashed), url))
            original = HASHED.sub(r"\g<stem>.js", target)
            assert original in manifest, f"{hashed} imports {url}, which is no static file"
            assert target == manifest[original], (
                f"{hashed} imports {url}, not the hashed {manifest[original]}"
            )
            assert (static_root / target).is_file()
            found.append(original)
        return tuple(found)

    def depth(name: str) -> int:
        return 1 + max((depth(child) for child in imports(manifest[name])), default=0)

    reached: set[str] = set()
    pending = list(ENTRIES)
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending.extend(imports(manifest[name]))
    # Every module of the pages is reached, through hashed names alone.
    sources = {
        path.relative_to(STATIC_SOURCES).as_posix()
        for folder in ("media_tasks", "chat", "site")
        for path in (STATIC_SOURCES / folder).rglob("*.js")
    }
    assert reached == sources
    assert {"media_tasks/api.js", "media_tasks/socket.js", "site/wire.js"} <= reached

    # Hashes settle a level of imports per pass when the files come in the worst order, and
    # collectstatic lists them in whatever order the file system does.
    deepest = max(depth(name) for name in ENTRIES) - 1
    assert deepest <= ModuleManifestStaticFilesStorage.max_post_process_passes, (
        f"an import chain {deepest} deep may need more passes than "
        f"max_post_process_passes ({ModuleManifestStaticFilesStorage.max_post_process_passes})"
    )

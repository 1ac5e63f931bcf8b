"""Reading deploy/'s systemd units and environment file the way systemd does, so that tests run
what the units say: their ExecStart lines, their environment, the hardening a plain process
can take (no new privileges, no writable executable memory, the umask)."""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
ENV_EXAMPLE = DEPLOY / "env.example"
NGINX_SITE = DEPLOY / "nginx" / "pipeline.conf"
# The paths the units assume (README.md, "Production"), and where they are in this checkout.
INSTALL_ROOT = "/opt/pipeline"
INSTALL_VENV = "/opt/pipeline/.venv"
INSTALL_ENV_FILE = "/etc/pipeline/pipeline.env"
VENV = Path(sys.executable).parent.parent
# The PATH systemd gives services.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Unit:
    name: str
    sections: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def values(self, section: str, key: str) -> list[str]:
        return self.sections.get(section, {}).get(key, [])

    def value(self, section: str, key: str) -> str:
        """The effective (last) value of a key; fails naming the key if it is missing."""
        values = self.values(section, key)
        assert values, f"{self.name} has no {key}= in [{section}]"
        return values[-1]


def parse_unit(path: Path, name: str | None = None) -> Unit:
    """Sections and keys of a unit file (comments, continuation lines, repeated keys)."""
    unit = Unit(name or path.name)
    section = ""
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            unit.sections.setdefault(section, {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a key=value line: {line!r}"
        unit.sections.setdefault(section, {}).setdefault(key.strip(), []).append(value.strip())
    return unit


def expand_specifiers(text: str, instance: str = "") -> str:
    """systemd's %i (instance) and %% (a literal %); any other specifier is an error here."""

    def replace(match: re.Match[str]) -> str:
        spec = match.group(1)
        if spec == "%":
            return "%"
        if spec in "iI":
            return instance
        raise AssertionError(f"specifier %{spec} is not handled by the tests")

    return re.sub(r"%(.)", replace, text)


def to_checkout(text: str) -> str:
    """Install paths (/opt/pipeline, its venv) replaced by this checkout's."""
    return text.replace(INSTALL_VENV, str(VENV)).replace(INSTALL_ROOT, str(ROOT))


def command(unit: Unit, key: str = "ExecStart", instance: str = "") -> list[str]:
    """A unit's command line as systemd would run it, on this checkout's paths."""
    line = unit.value("Service", key)
    assert not line.startswith(("-", "@", "+", "!", ":")), f"{unit.name}: prefix in {line!r}"
    assert "$" not in line, f"{unit.name}: environment expansion in {key}= is not handled"
    return [to_checkout(expand_specifiers(arg, instance)) for arg in shlex.split(line)]


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as systemd's EnvironmentFile= reads them (comments with # or ;)."""
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a KEY=value line: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def unit_environment(unit: Unit, env_file: Path, **overrides: str) -> dict[str, str]:
    """The environment systemd would give the unit: a bare PATH, Environment=, then the
    EnvironmentFile= (here `env_file`), then the test's `overrides`."""
    env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8"}
    for assignments in unit.values("Service", "Environment"):
        for assignment in shlex.split(assignments):
            key, _, value = assignment.partition("=")
            env[key] = value
    assert unit.value("Service", "EnvironmentFile") == INSTALL_ENV_FILE
    env.update(parse_env_file(env_file))
    env.update(overrides)
    return env


# A launcher applying what a process can apply to itself of the unit's sandbox, then exec'ing
# the unit's command: PR_SET_NO_NEW_PRIVS (NoNewPrivileges=), PR_SET_MDWE (the kernel's own
# MemoryDenyWriteExecute=, Linux 6.3 and later; skipped on older kernels) and the UMask=.
LAUNCHER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
no_new_privs, mdwe, umask = sys.argv[1:4]
if no_new_privs == "yes" and libc.prctl(38, 1, 0, 0, 0) != 0:
    sys.exit("PR_SET_NO_NEW_PRIVS failed")
if mdwe == "yes":
    libc.prctl(65, 1, 0, 0, 0)
os.umask(int(umask, 8))
os.execv(sys.argv[4], sys.argv[4:])
"""


def sandboxed(unit: Unit, argv: list[str]) -> list[str]:
    service = unit.sections["Service"]
    return [
        sys.executable,
        "-c",
        LAUNCHER,
        service.get("NoNewPrivileges", ["no"])[-1],
        service.get("MemoryDenyWriteExecute", ["no"])[-1],
        service.get("UMask", ["0022"])[-1],
        *argv,
    ]


def render_units(directory: Path, env_file: Path) -> None:
    """Copies of deploy/systemd/ with this checkout's paths, for systemd-analyze."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in sorted(UNITS.iterdir()):
        text = to_checkout(path.read_text()).replace(INSTALL_ENV_FILE, str(env_file))
        (directory / path.name).write_text(text)

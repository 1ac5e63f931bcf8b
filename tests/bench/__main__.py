"""`python -m tests.bench [NAME ...]`: run every `tests/bench/bench_*.py`, or those named.

Each module's `main()` runs in a child process of its own, so that one benchmark's Django
settings, environment and leftovers cannot colour the next one's figures.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.bench import ROOT, out

BENCH_DIR = Path(__file__).resolve().parent
# A generous bound per module (a module may set its own MODULE_TIMEOUT); each benchmark
# also bounds its own steps.
MODULE_TIMEOUT = 600


def discover() -> list[str]:
    return sorted(path.stem for path in BENCH_DIR.glob("bench_*.py"))


def run_module(name: str) -> int:
    timeout = getattr(
        importlib.import_module(f"tests.bench.{name}"), "MODULE_TIMEOUT", MODULE_TIMEOUT
    )
    started = time.monotonic()
    out(f"=== {name} ===")
    code = f"from tests.bench import {name}; {name}.main()"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        returncode = child.wait(timeout)
    except KeyboardInterrupt:
        # Ctrl-C reached the child too; let it stop what it started.
        child.wait(60)
        raise
    except subprocess.TimeoutExpired:
        # SIGINT, not SIGKILL: the benchmark's `finally` blocks stop the processes it started.
        child.send_signal(signal.SIGINT)
        try:
            child.wait(60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        out(f"=== {name}: gave up after {timeout} s ===")
        return 1
    verdict = "ok" if returncode == 0 else f"FAILED (exit {returncode})"
    out(f"=== {name}: {verdict} in {time.monotonic() - started:.0f} s ===\n")
    return returncode


def main(argv: list[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run (default all): {available}"
    )
    names = [name.removesuffix(".py") for name in parser.parse_args(argv).names]
    names = [name if name.startswith("bench_") else f"bench_{name}" for name in names]
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)} (have: {', '.join(available)})")
    failed = [name for name in names or available if run_module(name) != 0]
    if failed:
        out(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)

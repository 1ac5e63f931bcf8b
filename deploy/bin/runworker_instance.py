#!/usr/bin/env python3
"""Runs `manage.py runworker` for the channels named by a systemd worker instance.

    pipeline-worker@thumbnails-3          ->  manage.py runworker thumbnails
    pipeline-worker@compute_thumbnails-1  ->  manage.py runworker compute thumbnails

The instance is CHANNEL[_CHANNEL...]-N: the channels joined by "_" (a unit name holds no
spaces or commas, and the named channels have no "_"), then "-" and the copy number.
Usage: runworker_instance.py [--dry-run] INSTANCE   (--dry-run prints the command instead)
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parent.parent.parent
INSTANCE = re.compile(r"^(?P<channels>.+)-(?P<copy>\d+)$")
# Channels' own rule for a channel name (channels.layers.BaseChannelLayer).
CHANNEL_NAME = re.compile(r"^[a-zA-Z\d\-_.]{1,99}$")


class InstanceError(ValueError):
    pass


def channels_from_instance(instance: str, known: list[str]) -> list[str]:
    """The channels an instance name asks for; InstanceError names what is wrong with it."""
    match = INSTANCE.match(instance)
    if match is None:
        raise InstanceError(
            f"worker instance {instance!r} is not CHANNEL[_CHANNEL...]-N, e.g. thumbnails-1 "
            "or compute_thumbnails-2"
        )
    channels = match["channels"].split("_")
    for channel in channels:
        if not CHANNEL_NAME.match(channel):
            raise InstanceError(f"worker instance {instance!r}: {channel!r} is not a channel name")
        if channel not in known:
            raise InstanceError(
                f"worker instance {instance!r}: no channel {channel!r} "
                f"(the named channels are: {', '.join(known)})"
            )
    if len(set(channels)) != len(channels):
        raise InstanceError(f"worker instance {instance!r} names a channel twice")
    return channels


def worker_channels() -> list[str]:
    """settings.WORKER_CHANNELS, read without setting Django up (a start must stay quick)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from django.conf import settings

    return list(settings.WORKER_CHANNELS)


def main(argv: list[str]) -> int:
    dry_run = "--dry-run" in argv
    args = [arg for arg in argv if arg != "--dry-run"]
    if len(args) != 1:
        sys.stderr.write(__doc__ or "")
        return 2
    try:
        known = worker_channels()
    except ImproperlyConfigured as error:
        # One line naming the variable, as runworker itself would say it.
        sys.stderr.write(f"settings: {error}\n")
        return 1
    try:
        channels = channels_from_instance(args[0], known)
    except InstanceError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    command = [sys.executable, str(ROOT / "manage.py"), "runworker", *channels]
    if dry_run:
        sys.stdout.write(shlex.join(command) + "\n")
        return 0
    # exec: systemd's SIGTERM goes straight to runworker, which stops gracefully.
    os.chdir(ROOT)
    os.execv(sys.executable, command)  # noqa: S606 (no shell: the arguments are checked)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The site's own recurring jobs (JOBS["SCHEDULE"] in settings)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management import call_command

from workers.backends import task
from workers.services import jobs_prune

logger = logging.getLogger(__name__)


@task(queue_name="compute", unique=True, time_limit=3600)
def housekeeping() -> dict[str, Any]:
    """Delete expired sessions (Django's clearsessions) and finished jobs older than
    JOBS_KEEP_FINISHED_DAYS that no upload points to."""
    call_command("clearsessions")
    deleted = jobs_prune(older_than_days=settings.JOBS["KEEP_FINISHED_DAYS"])
    logger.info("housekeeping: expired sessions cleared, %d finished jobs deleted", deleted)
    return {"jobs_deleted": deleted}

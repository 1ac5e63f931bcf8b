"""The bytes of resumable uploads (media_tasks/resumable.py) while they wait: a file per
upload under UPLOAD_PARTIALS_ROOT, until the upload completes or expires."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from media_tasks.models import PartialUpload

logger = logging.getLogger(__name__)


def expiry() -> datetime:
    """When a resumable upload touched now expires, if nothing else arrives."""
    return timezone.now() + timedelta(seconds=settings.UPLOAD_RESUMABLE_EXPIRE)


def partial_discard(partial: PartialUpload) -> None:
    """Delete the resumable upload and its bytes (an upload made of it stays)."""
    partial.path.unlink(missing_ok=True)
    PartialUpload.objects.filter(pk=partial.pk).delete()


def partial_uploads_expire(*, now: datetime | None = None) -> int:
    """Delete resumable uploads past their expiry, with their bytes; how many were."""
    expired = PartialUpload.objects.filter(expires_at__lte=now or timezone.now())
    count = 0
    for partial in expired.iterator():
        partial_discard(partial)
        count += 1
    if count:
        logger.info("partial uploads expired: %d deleted", count)
    return count

"""The upload limits of settings, as the imaging functions take them (the request's checks
and the workers' decode use the same ones)."""

from typing import Any

from django.conf import settings


def image_limits() -> dict[str, Any]:
    return {
        "max_pixels": settings.UPLOAD_MAX_PIXELS,
        "max_frames": settings.UPLOAD_MAX_FRAMES,
        "max_total_pixels": settings.UPLOAD_MAX_TOTAL_PIXELS,
    }

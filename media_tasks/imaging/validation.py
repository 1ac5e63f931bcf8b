"""Is this upload an allowed, complete image? Judged by content, never by the file's name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from PIL import ImageFile

from media_tasks.imaging.errors import DAMAGED, rejecting
from media_tasks.imaging.opening import (
    DEFAULT_FORMATS,
    allowed,
    format_of,
    frame_count,
    mime,
    opened,
    pixel_limit,
    require_truncation_checks,
)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """Facts read from an accepted upload; width and height are as stored (before EXIF rotation)."""

    format: str
    width: int
    height: int
    mime_type: str
    frames: int


def inspect_upload(
    fp: BinaryIO,
    *,
    max_pixels: int,
    allowed_formats: frozenset[str] = DEFAULT_FORMATS,
) -> ImageInfo:
    """Check by content (never the name) that ``fp`` is an allowed, complete image.
    Raises ImageRejected with a user-readable reason; ``fp`` is rewound to 0 in every case."""
    formats = allowed(allowed_formats)
    require_truncation_checks()
    try:
        with opened(fp, formats, max_pixels) as img:
            fmt = format_of(img)
            width, height = img.size
            mime_type = "image/jpeg" if fmt == "JPEG" else img.get_format_mimetype()
            info = ImageInfo(fmt, width, height, mime_type or mime(fmt), frame_count(img))
        # verify() leaves the image unusable, hence separate opens for structure and pixels.
        with opened(fp, formats, max_pixels) as img, rejecting(DAMAGED):
            img.verify()
        with opened(fp, formats, max_pixels) as img:
            _check_pixels_decode(img, info, pixel_limit(max_pixels))
        return info
    finally:
        fp.seek(0)


def _check_pixels_decode(img: ImageFile.ImageFile, info: ImageInfo, limit: int) -> None:
    """Decode the pixel data so truncated files fail now rather than in a worker later."""
    if info.format == "JPEG":
        # verify() ignores JPEG data; a 1/8-scale decode still reads every entropy-coded byte.
        img.draft("RGB", (max(1, info.width // 8), max(1, info.height // 8)))
    with rejecting(DAMAGED):
        img.load()
    # Later frames are decoded too, within the same pixel budget as a single image.
    budget = limit - info.width * info.height
    for index in range(1, info.frames):
        budget -= info.width * info.height
        if budget < 0:
            break
        with rejecting(DAMAGED):
            img.seek(index)
            img.load()

"""Is this upload an allowed, complete image? Judged by content, never by the file's name.

Two depths. ``inspect_upload`` is what the upload request can afford: headers and block
structure only, at a cost bounded whatever the file. ``check_decodes`` decodes every frame, so
a truncated or damaged file fails there; it belongs in a worker (``make_renditions`` includes it).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO, Final

from PIL import ImageFile

from media_tasks.imaging import structure
from media_tasks.imaging.errors import (
    DAMAGED,
    ImageRejected,
    frames_too_large,
    rejecting,
    too_large,
    too_many_frames,
)
from media_tasks.imaging.opening import (
    DEFAULT_FORMATS,
    allowed,
    format_of,
    mime,
    opened,
    pixel_limit,
    require_truncation_checks,
)
from media_tasks.imaging.structure import Layout

# Forty seconds at 25 frames a second: longer than nearly every animation people post. Pillow
# spends ~15 us of Python per GIF frame beyond the pixels themselves, so this caps that part.
DEFAULT_MAX_FRAMES: Final = 1000
# Unless told otherwise, the frames of an animation may together cost what four images at the
# pixel limit cost to decode (200 megapixels for the default 50: a few seconds of a worker).
TOTAL_PIXELS_PER_LIMIT: Final = 4


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """Facts read from an accepted upload; width and height are as stored (before EXIF rotation)."""

    format: str
    width: int
    height: int
    mime_type: str
    frames: int


@dataclass(frozen=True, slots=True)
class Limits:
    """Pixels of one frame, number of frames, and canvas pixels decoded for all frames."""

    max_pixels: int
    max_frames: int
    max_total_pixels: int

    @classmethod
    def of(cls, max_pixels: int, max_frames: int, max_total_pixels: int | None) -> Limits:
        total = (
            TOTAL_PIXELS_PER_LIMIT * max_pixels if max_total_pixels is None else max_total_pixels
        )
        if max_pixels <= 0 or max_frames <= 0 or total <= 0:
            raise ValueError(
                f"limits must be positive: max_pixels={max_pixels}, max_frames={max_frames}, "
                f"max_total_pixels={total}"
            )
        return cls(max_pixels, max_frames, total)


def inspect_upload(
    fp: BinaryIO,
    *,
    max_pixels: int,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_total_pixels: int | None = None,
    allowed_formats: frozenset[str] = DEFAULT_FORMATS,
) -> ImageInfo:
    """Check by content (never the name), from headers and block structure only, that ``fp`` is
    an allowed image within the limits (``max_total_pixels``: all frames of an animation, by
    default 4 x ``max_pixels``). No pixel is decoded: that is ``check_decodes``, in a worker.
    Raises ImageRejected with a user-readable reason; ``fp`` is rewound to 0 in every case."""
    formats = allowed(allowed_formats)
    limits = Limits.of(max_pixels, max_frames, max_total_pixels)
    try:
        return header_check(fp, formats, limits)
    finally:
        fp.seek(0)


def inspect_head(
    head: bytes, *, max_pixels: int, allowed_formats: frozenset[str] = DEFAULT_FORMATS
) -> ImageInfo:
    """Check from a file's first bytes only (a ranged read of an object in storage): an allowed
    format by content, dimensions within ``max_pixels``. Block structure and frames need the
    whole file: the workers' header_check does them before any decode. ``frames`` is 1."""
    formats = allowed(allowed_formats)
    with opened(io.BytesIO(head), formats, max_pixels) as img:
        fmt = format_of(img)
        width, height = img.size
        mime_type = "image/jpeg" if fmt == "JPEG" else img.get_format_mimetype()
    return ImageInfo(fmt, width, height, mime_type or mime(fmt), 1)


def check_decodes(
    fp: BinaryIO,
    *,
    max_pixels: int,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_total_pixels: int | None = None,
    allowed_formats: frozenset[str] = DEFAULT_FORMATS,
) -> ImageInfo:
    """inspect_upload's checks, then a full decode of every frame, so that a truncated or
    damaged file is refused. Costs a decode: run it in a worker. ``fp`` is rewound to 0."""
    formats = allowed(allowed_formats)
    limits = Limits.of(max_pixels, max_frames, max_total_pixels)
    try:
        info = header_check(fp, formats, limits)
        with opened(fp, formats, max_pixels) as img:
            decode_frames(img, info.frames, damaged=DAMAGED)
        return info
    finally:
        fp.seek(0)


def header_check(
    fp: BinaryIO, formats: tuple[str, ...], limits: Limits, *, damaged: str = DAMAGED
) -> ImageInfo:
    """The bounded checks: block structure, format, size, frames and their pixels, and for PNG
    every chunk's checksum. ``damaged`` is the reason given for a file found cut or broken."""
    layout = structure.scan(fp, formats, max_frames=limits.max_frames, damaged=damaged)
    with opened(fp, formats, limits.max_pixels) as img:
        fmt = format_of(img)
        width, height = img.size
        mime_type = "image/jpeg" if fmt == "JPEG" else img.get_format_mimetype()
        if layout is None:
            # AVIF: libavif has already parsed the container (in C) and counted the frames.
            frames = max(1, int(getattr(img, "n_frames", 1)))
            layout = Layout(frames, (width, height), frames * width * height)
    _within(layout, limits, damaged)
    if fmt == "PNG":
        # verify() reads every chunk and checks its CRC without decompressing anything:
        # milliseconds for 20 MB, and the block budget of the scan bounds its chunk count.
        with opened(fp, formats, limits.max_pixels) as img, rejecting(damaged):
            img.verify()
    return ImageInfo(fmt, width, height, mime_type or mime(fmt), layout.frames)


def decode_frames(
    img: ImageFile.ImageFile, frames: int, *, damaged: str, first_decoded: bool = False
) -> None:
    """Decode every frame of ``img`` (the first too, unless ``first_decoded``): a truncated or
    damaged file fails here with ImageRejected(``damaged``)."""
    require_truncation_checks()
    if not first_decoded:
        if format_of(img) == "JPEG":
            # A 1/8-scale decode still reads every entropy-coded byte.
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
        with rejecting(damaged):
            img.load()
    for index in range(1, frames):
        with rejecting(damaged):
            img.seek(index)
            img.load()


def _within(layout: Layout, limits: Limits, damaged: str) -> None:
    if layout.frames > limits.max_frames:
        raise ImageRejected(too_many_frames(limits.max_frames))
    limit = pixel_limit(limits.max_pixels)
    width, height = layout.canvas
    if width * height > limit:
        # A later GIF frame reaching beyond the canvas makes Pillow widen it.
        raise ImageRejected(too_large(width * height, limit, layout.canvas))
    if layout.frames > 1 and layout.decoded_pixels > limits.max_total_pixels:
        raise ImageRejected(frames_too_large(layout.decoded_pixels, limits.max_total_pixels))
    if layout.incomplete:
        raise ImageRejected(damaged)

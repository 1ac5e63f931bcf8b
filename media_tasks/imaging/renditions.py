"""Thumbnails: WebP and a JPEG fallback per longest side, upright, sRGB, without metadata."""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Final

from PIL import Image

from media_tasks.imaging import metadata, pixels
from media_tasks.imaging.errors import CANNOT_DECODE
from media_tasks.imaging.opening import DEFAULT_FORMATS, allowed, mime, opened
from media_tasks.imaging.progress import Progress, ProgressCallback
from media_tasks.imaging.validation import DEFAULT_MAX_FRAMES, Limits, decode_frames, header_check

WEBP_QUALITY: Final = 80
# method 4 is libwebp's default balance; higher methods cost much more time for ~2% bytes.
WEBP_METHOD: Final = 4
JPEG_QUALITY: Final = 82


@dataclass(frozen=True, slots=True)
class Rendition:
    """One encoded thumbnail; ``size`` is the requested longest side, width/height the real ones."""

    name: str
    size: int
    width: int
    height: int
    format: str
    content_type: str
    data: bytes


def make_renditions(
    fp: BinaryIO,
    *,
    sizes: Sequence[int],
    max_pixels: int,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_total_pixels: int | None = None,
    on_step: ProgressCallback | None = None,
    allowed_formats: frozenset[str] = DEFAULT_FORMATS,
) -> list[Rendition]:
    """WebP + JPEG per longest side, largest first: upright, sRGB, no metadata (EXIF/GPS/ICC).
    Animated images give their first frame; never upscales (oversized sizes collapse into one).
    Every frame is decoded, as check_decodes does: a damaged file raises ImageRejected."""
    targets = _targets(sizes)
    formats = allowed(allowed_formats)
    limits = Limits.of(max_pixels, max_frames, max_total_pixels)
    # Pillow releases the GIL in resize and WebP encoding, so a second thread overlaps them
    # with the JPEG encodes (which hold the GIL) and with the next resize.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="renditions") as pool:
        try:
            return _renditions(fp, targets, formats, limits, on_step, pool)
        finally:
            fp.seek(0)


def _renditions(
    fp: BinaryIO,
    targets: list[int],
    formats: tuple[str, ...],
    limits: Limits,
    on_step: ProgressCallback | None,
    pool: ThreadPoolExecutor,
) -> list[Rendition]:
    """The body of make_renditions; progress is reported from the calling thread only."""
    info = header_check(fp, formats, limits, damaged=CANNOT_DECODE)
    with opened(fp, formats, limits.max_pixels) as img:
        orientation = metadata.orientation_of(img)
        plan = _plan(metadata.turned_size(img.size, orientation), targets)
        if not plan:
            return []
        progress = Progress(on_step, 1 + 2 * len(plan))
        icc = metadata.icc_profile(img)
        _size, width, height = plan[0]
        first = metadata.turned_size((width, height), orientation)  # as stored
        pixels.decode(img, covering=first)
        progress.step(f"decoded {img.format} image")
        # Downscale before colour management and rotation, which then touch fewer pixels.
        current = pixels.resize(pixels.working_mode(img), first, pool)
        current = pixels.drop_opaque_alpha(pixels.to_srgb(current, icc))
        current = metadata.upright(current, orientation)
        if current is img:
            # Threads below share this image; a plain copy has no file state to race on.
            current = img.copy()
        # Only the first frame is shown, but a damaged later one must fail the job all the same.
        decode_frames(img, info.frames, damaged=CANNOT_DECODE, first_decoded=True)
    # Slots keep the output order (WebP, JPEG per size) while WebP encodes finish in the pool.
    slots: list[Future[Rendition] | Rendition] = []
    reported = 0

    def report(wait: bool) -> None:
        nonlocal reported
        while reported < len(slots):
            slot = slots[reported]
            if isinstance(slot, Future):
                if not wait and not slot.done():
                    return
                slot = slot.result()
            progress.step(f"wrote {slot.name} ({slot.width}x{slot.height})")
            reported += 1

    for size, width, height in plan:
        # Each size comes from the previous, smaller result rather than from the original.
        current = pixels.resize(current, (width, height), pool)
        slots.append(pool.submit(_encode, current, size, "WEBP"))
        slots.append(_encode(current, size, "JPEG"))
        report(wait=False)
    report(wait=True)
    return [slot.result() if isinstance(slot, Future) else slot for slot in slots]


def _targets(sizes: Sequence[int]) -> list[int]:
    targets = sorted({int(size) for size in sizes}, reverse=True)
    if any(size <= 0 for size in targets):
        raise ValueError(f"sizes must be positive, got {list(sizes)}")
    return targets


def _plan(upright: tuple[int, int], targets: Sequence[int]) -> list[tuple[int, int, int]]:
    """(size, width, height) per rendition, largest first, without repeated dimensions."""
    plan: list[tuple[int, int, int]] = []
    seen: set[tuple[int, int]] = set()
    for size in targets:
        dims = pixels.fit(upright, size)
        if dims not in seen:
            seen.add(dims)
            plan.append((size, *dims))
    return plan


def _encode(img: Image.Image, size: int, fmt: str) -> Rendition:
    """Encode without any metadata: Pillow would otherwise copy comments/XMP from ``info``."""
    out = img if fmt == "WEBP" else pixels.flatten(img)
    if out is img:
        out = img.copy()
    out.info = {}
    buffer = io.BytesIO()
    if fmt == "WEBP":
        out.save(buffer, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    else:
        out.save(buffer, "JPEG", quality=JPEG_QUALITY, progressive=True, optimize=True)
    return Rendition(
        name=f"{size}-{fmt.lower()}",
        size=size,
        width=out.width,
        height=out.height,
        format=fmt,
        content_type=mime(fmt),
        data=buffer.getvalue(),
    )

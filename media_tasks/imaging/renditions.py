"""Thumbnails per longest side, in the formats asked for each (AVIF, WebP, JPEG; by default
WebP and a JPEG fallback), upright, sRGB, without metadata."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
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
# libavif through Pillow: quality 60 gives files smaller than WebP's at quality 80 for a like
# look; speed 8 encodes about as fast as WebP's method 4 (speed 6, the default, takes 3-4x
# longer for ~2% bytes). See the README's table.
AVIF_QUALITY: Final = 60
AVIF_SPEED: Final = 8
FORMATS: Final = ("AVIF", "WEBP", "JPEG")
DEFAULT_RENDITION_FORMATS: Final = ("WEBP", "JPEG")
# Encoders that release the GIL, run in the pool beside the others.
_THREADED: Final = frozenset({"WEBP", "AVIF"})


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
    formats: Sequence[str] | Mapping[int, Sequence[str]] = DEFAULT_RENDITION_FORMATS,
) -> list[Rendition]:
    """Renditions per longest side, largest first, in `formats` (one list for every size, or
    a list per size), in their order: upright, sRGB, no metadata (EXIF/GPS/ICC). Animated
    images give their first frame; never upscales (oversized sizes collapse into one).
    Every frame is decoded, as check_decodes does: a damaged file raises ImageRejected."""
    targets = _targets(sizes)
    per_size = formats_per_size(targets, formats)
    readable = allowed(allowed_formats)
    limits = Limits.of(max_pixels, max_frames, max_total_pixels)
    # Pillow releases the GIL in resize and WebP encoding, so a second thread overlaps them
    # with the JPEG encodes (which hold the GIL) and with the next resize.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="renditions") as pool:
        try:
            return _renditions(fp, targets, per_size, readable, limits, on_step, pool)
        finally:
            fp.seek(0)


def formats_per_size(
    sizes: Sequence[int], formats: Sequence[str] | Mapping[int, Sequence[str]]
) -> dict[int, tuple[str, ...]]:
    """Each size's formats, checked: ValueError names an unknown one or a size without any."""
    chosen: dict[int, tuple[str, ...]] = {}
    for size in sizes:
        names = formats.get(size, ()) if isinstance(formats, Mapping) else formats
        wanted = tuple(dict.fromkeys(name.upper() for name in names))
        unknown = [name for name in wanted if name not in FORMATS]
        if unknown or not wanted:
            raise ValueError(f"formats for size {size} must be some of {FORMATS}, got {names!r}")
        chosen[size] = wanted
    return chosen


def rendition_names(
    size: tuple[int, int], sizes: Sequence[int], formats: Mapping[int, Sequence[str]]
) -> set[str]:
    """The names make_renditions gives the renditions of an image of `size` (either way up)."""
    return {
        _name(target, fmt)
        for target, _width, _height in _plan(size, _targets(sizes))
        for fmt in formats[target]
    }


def _name(size: int, fmt: str) -> str:
    return f"{size}-{fmt.lower()}"


def _renditions(
    fp: BinaryIO,
    targets: list[int],
    per_size: dict[int, tuple[str, ...]],
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
        progress = Progress(on_step, 1 + sum(len(per_size[size]) for size, _w, _h in plan))
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
    # Slots keep the output order (per size, its formats in order) while the encoders that
    # release the GIL finish in the pool.
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
        for fmt in per_size[size]:
            if fmt in _THREADED:
                slots.append(pool.submit(_encode, current, size, fmt))
            else:
                slots.append(_encode(current, size, fmt))
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
    out = pixels.flatten(img) if fmt == "JPEG" else img
    if out is img:
        out = img.copy()
    out.info = {}
    buffer = io.BytesIO()
    if fmt == "WEBP":
        out.save(buffer, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    elif fmt == "AVIF":
        out.save(buffer, "AVIF", quality=AVIF_QUALITY, speed=AVIF_SPEED)
    else:
        out.save(buffer, "JPEG", quality=JPEG_QUALITY, progressive=True, optimize=True)
    return Rendition(
        name=_name(size, fmt),
        size=size,
        width=out.width,
        height=out.height,
        format=fmt,
        content_type=mime(fmt),
        data=buffer.getvalue(),
    )

"""Describe an image: size, EXIF summary, colours, perceptual hash and tiny placeholders (a 16 px
WebP, and a ThumbHash)."""

from __future__ import annotations

import base64
import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO, Final

from PIL import Image, ImageStat

from media_tasks.imaging import metadata, pixels
from media_tasks.imaging.errors import CANNOT_DECODE
from media_tasks.imaging.metadata import ExifSummary
from media_tasks.imaging.opening import DEFAULT_FORMATS, allowed, format_of, opened
from media_tasks.imaging.progress import Progress, ProgressCallback
from media_tasks.imaging.thumbhash import thumbhash_of
from media_tasks.imaging.validation import DEFAULT_MAX_FRAMES, Limits, header_check

ANALYSIS_SIZE: Final = 256
PLACEHOLDER_SIZE: Final = 16
PLACEHOLDER_MAX_CHARS: Final = 600
# RGB distance under which two quantised colours count as the same dominant colour.
_SAME_COLOUR_DISTANCE: Final = 32


@dataclass(frozen=True, slots=True)
class Analysis:
    """What ``analyse`` found; width and height are upright (after EXIF orientation)."""

    format: str
    width: int
    height: int
    mode: str
    animated: bool
    frames: int
    exif: ExifSummary
    dominant_colours: list[str]
    average_colour: str
    phash: str
    placeholder: str
    thumbhash: str

    def as_json(self, *, include_gps: bool = True) -> dict[str, Any]:
        """Return a JSON-ready dict; ``include_gps=False`` drops the location for non-owners."""
        data = asdict(self)
        if not include_gps:
            data["exif"]["gps"] = None
        return data


def analyse(
    fp: BinaryIO,
    *,
    max_pixels: int,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_total_pixels: int | None = None,
    on_step: ProgressCallback | None = None,
    allowed_formats: frozenset[str] = DEFAULT_FORMATS,
) -> Analysis:
    """Describe an image: size, EXIF summary, colours, perceptual hash and a tiny placeholder.
    Animated images are analysed from their first frame."""
    formats = allowed(allowed_formats)
    limits = Limits.of(max_pixels, max_frames, max_total_pixels)
    progress = Progress(on_step, 5)
    try:
        frames = header_check(fp, formats, limits, damaged=CANNOT_DECODE).frames
        with opened(fp, formats, max_pixels) as img:
            fmt, mode = format_of(img), img.mode
            exif = metadata.exif_summary(img)
            width, height = metadata.turned_size(img.size, exif.orientation)
            icc = metadata.icc_profile(img)
            pixels.decode(img, covering=pixels.fit(img.size, ANALYSIS_SIZE))
            progress.step("decoded image")
            work = pixels.resize(pixels.working_mode(img), pixels.fit(img.size, ANALYSIS_SIZE))
            work = metadata.upright(pixels.to_srgb(work, icc), exif.orientation)
        progress.step("read EXIF")
        dominant, average = _colours(work)
        progress.step("measured colours")
        phash = _phash(work)
        progress.step("computed perceptual hash")
        placeholder = _placeholder(work)
        thumbhash = thumbhash_of(work)
        progress.step("made placeholders")
        return Analysis(
            format=fmt,
            width=width,
            height=height,
            mode=mode,
            animated=frames > 1,
            frames=frames,
            exif=exif,
            dominant_colours=dominant,
            average_colour=average,
            phash=phash,
            placeholder=placeholder,
            thumbhash=thumbhash,
        )
    finally:
        fp.seek(0)


def hamming(a: str, b: str) -> int:
    """Count differing bits between two hex perceptual hashes; <= 10 means visually similar."""
    if len(a) != len(b):
        raise ValueError(f"hashes differ in length: {len(a)} and {len(b)}")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _colours(img: Image.Image) -> tuple[list[str], str]:
    """Up to five dominant colours by pixel share, and the mean colour, of visible pixels."""
    small = pixels.resize(img, pixels.fit(img.size, 64))
    rgb = small.convert("RGB")
    mask: Image.Image | None = None
    if small.mode == "RGBA":
        mask = small.getchannel("A").point(lambda a: 255 if a >= 128 else 0)
        if mask.getextrema() == (0, 0):
            return [], "#ffffff"
    quantized = rgb.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or []
    counts = quantized.histogram(mask)[: len(palette) // 3]
    # Median cut happily splits one big flat area into near-identical shades; merge those
    # so that the five colours shown are five different colours.
    colours: list[Sequence[int]] = []
    totals: list[int] = []
    for count, index in sorted(((c, i) for i, c in enumerate(counts) if c), reverse=True):
        colour = palette[3 * index : 3 * index + 3]
        for position, kept in enumerate(colours):
            if math.dist(kept, colour) < _SAME_COLOUR_DISTANCE:
                totals[position] += count
                break
        else:
            colours.append(colour)
            totals.append(count)
    ranked = sorted(zip(totals, range(len(colours)), strict=True), reverse=True)
    dominant = [_hex(colours[position]) for _total, position in ranked[:5]]
    mean = ImageStat.Stat(rgb, mask).mean
    return dominant, _hex(mean)


def _hex(values: Sequence[float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(v))):02x}" for v in values[:3])


# Cosine table for the 8 lowest frequencies of a 32-point DCT-II (unnormalised, like scipy).
_DCT: Final = [[math.cos((2 * x + 1) * u * math.pi / 64) for x in range(32)] for u in range(8)]


def _phash(img: Image.Image) -> str:
    """64-bit DCT perceptual hash (the imagehash "phash" recipe) as 16 hex digits."""
    grey = pixels.flatten(img).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    values = list(grey.tobytes())
    rows = [values[32 * y : 32 * y + 32] for y in range(32)]
    # Separable DCT: 8 frequencies along each row, then 8 down the columns.
    row_freq = [[sum(p * c for p, c in zip(row, cos, strict=True)) for cos in _DCT] for row in rows]
    coeffs = [
        sum(row_freq[y][u] * _DCT[v][y] for y in range(32)) for v in range(8) for u in range(8)
    ]
    median = statistics.median(coeffs)
    bits = 0
    for value in coeffs:
        bits = (bits << 1) | (value > median)
    return f"{bits:016x}"


def _placeholder(img: Image.Image) -> str:
    """A 16 px WebP data URI for a blurred preview; quality drops until it fits the budget."""
    tiny = pixels.resize(img, pixels.fit(img.size, PLACEHOLDER_SIZE))
    tiny = pixels.drop_opaque_alpha(tiny.copy())
    tiny.info = {}
    uri = ""
    for quality in (50, 30, 10):
        buffer = io.BytesIO()
        tiny.save(buffer, "WEBP", quality=quality, method=6)
        uri = "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        if len(uri) <= PLACEHOLDER_MAX_CHARS:
            break
    return uri

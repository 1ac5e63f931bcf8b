"""Validate uploaded images and derive renditions and analysis from them, with Pillow only.
Problems with the file itself raise ``ImageRejected``, whose ``reason`` users can read."""

from __future__ import annotations

import base64
import io
import math
import numbers
import re
import statistics
import struct
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import lru_cache, partial
from typing import Any, BinaryIO, Final

from PIL import (
    ExifTags,
    Image,
    ImageCms,
    ImageFile,
    ImageStat,
    UnidentifiedImageError,
    features,
)

__all__ = [
    "DEFAULT_FORMATS",
    "Analysis",
    "ExifSummary",
    "GpsPosition",
    "ImageInfo",
    "ImageRejected",
    "ProgressCallback",
    "Rendition",
    "analyse",
    "hamming",
    "inspect_upload",
    "make_renditions",
]

ProgressCallback = Callable[[int, str], None]

# AVIF is only offered when this Pillow build can actually decode it.
DEFAULT_FORMATS: Final[frozenset[str]] = frozenset(
    {"JPEG", "PNG", "WEBP", "GIF"} | ({"AVIF"} if features.check("avif") else set())
)

WEBP_QUALITY: Final = 80
# method 4 is libwebp's default balance; higher methods cost much more time for ~2% bytes.
WEBP_METHOD: Final = 4
JPEG_QUALITY: Final = 82
REDUCING_GAP: Final = 3.0
# Below this many source pixels a resize is too quick to be worth splitting across threads.
_PARALLEL_RESIZE_PIXELS: Final = 2_000_000
ANALYSIS_SIZE: Final = 256
PLACEHOLDER_SIZE: Final = 16
PLACEHOLDER_MAX_CHARS: Final = 600
# RGB distance under which two quantised colours count as the same dominant colour.
_SAME_COLOUR_DISTANCE: Final = 32

_DISPLAY_NAMES: Final = {"WEBP": "WebP", "JXL": "JPEG XL"}
_ORDER: Final = ("JPEG", "PNG", "WEBP", "GIF", "AVIF")
_WHITE: Final = (255, 255, 255)

EMPTY_FILE: Final = "empty file"
DAMAGED: Final = "truncated or damaged image"
ZERO_SIZE: Final = "image has zero width or height"
CANNOT_DECODE: Final = "could not decode the image: the file is truncated or damaged"
TOO_BIG_TO_PROCESS: Final = "image is too large to process"

# What Pillow raises on malformed input; anything else is a bug in this module.
_PIL_ERRORS: Final[tuple[type[BaseException], ...]] = (
    OSError,
    SyntaxError,
    ValueError,
    struct.error,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    ImageCms.PyCMSError,
)
_PROFILE_ERRORS: Final[tuple[type[BaseException], ...]] = (*_PIL_ERRORS, MemoryError)
_BOMB_ERRORS: Final = (Image.DecompressionBombError, Image.DecompressionBombWarning)

# Same table as ImageOps.exif_transpose, applied ourselves so it can run after downscaling.
_TRANSPOSE: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageRejected(Exception):
    """The upload is not an acceptable image; ``reason`` is safe to show to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """Facts read from an accepted upload; width and height are as stored (before EXIF rotation)."""

    format: str
    width: int
    height: int
    mime_type: str
    frames: int


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


@dataclass(frozen=True, slots=True)
class GpsPosition:
    """A location in decimal degrees (WGS 84); show it to the owner only."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class ExifSummary:
    """Camera facts from EXIF; ``exposure_time`` is in seconds, ``gps`` is kept apart on purpose."""

    make: str | None = None
    model: str | None = None
    lens: str | None = None
    date_taken: str | None = None
    exposure_time: float | None = None
    f_number: float | None = None
    iso: int | None = None
    focal_length: float | None = None
    orientation: int = 1
    gps: GpsPosition | None = None


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

    def as_json(self, *, include_gps: bool = True) -> dict[str, Any]:
        """Return a JSON-ready dict; ``include_gps=False`` drops the location for non-owners."""
        data = asdict(self)
        if not include_gps:
            data["exif"]["gps"] = None
        return data


# --------------------------------------------------------------------------- public API


def inspect_upload(
    fp: BinaryIO,
    *,
    max_pixels: int,
    allowed_formats: frozenset[str] = DEFAULT_FORMATS,
) -> ImageInfo:
    """Check by content (never the name) that ``fp`` is an allowed, complete image.
    Raises ImageRejected with a user-readable reason; ``fp`` is rewound to 0 in every case."""
    formats = _formats(allowed_formats)
    _require_truncation_checks()
    try:
        with _opened(fp, formats, max_pixels) as img:
            fmt = _format_of(img)
            width, height = img.size
            mime = "image/jpeg" if fmt == "JPEG" else img.get_format_mimetype()
            info = ImageInfo(fmt, width, height, mime or _mime(fmt), _frames(img))
        # verify() leaves the image unusable, hence separate opens for structure and pixels.
        with _opened(fp, formats, max_pixels) as img:
            _guard(img.verify)
        with _opened(fp, formats, max_pixels) as img:
            _check_pixels_decode(img, info, _pixel_limit(max_pixels))
        return info
    finally:
        fp.seek(0)


def make_renditions(
    fp: BinaryIO,
    *,
    sizes: Sequence[int],
    max_pixels: int,
    on_step: ProgressCallback | None = None,
    allowed_formats: frozenset[str] = DEFAULT_FORMATS,
) -> list[Rendition]:
    """WebP + JPEG per longest side, largest first: upright, sRGB, no metadata (EXIF/GPS/ICC).
    Animated images give their first frame; never upscales (oversized sizes collapse into one)."""
    targets = _targets(sizes)
    formats = _formats(allowed_formats)
    # Pillow releases the GIL in resize and WebP encoding, so a second thread overlaps them
    # with the JPEG encodes (which hold the GIL) and with the next resize.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="renditions") as pool:
        try:
            return _renditions(fp, targets, formats, max_pixels, on_step, pool)
        finally:
            fp.seek(0)


def _renditions(
    fp: BinaryIO,
    targets: list[int],
    formats: tuple[str, ...],
    max_pixels: int,
    on_step: ProgressCallback | None,
    pool: ThreadPoolExecutor,
) -> list[Rendition]:
    """The body of make_renditions; progress is reported from the calling thread only."""
    with _opened(fp, formats, max_pixels) as img:
        orientation = _orientation(img)
        plan = _plan(*_upright(img.size, orientation), targets)
        if not plan:
            return []
        progress = _Progress(on_step, 1 + 2 * len(plan))
        icc = _icc(img)
        first = _stored(plan[0][1:], orientation)
        if _format_of(img) == "JPEG":
            # libjpeg scales while decoding: a 24 MP photo decodes at 1/2 to 1/8 size.
            img.draft("RGB", first)
        _decode(img)
        progress.step(f"decoded {img.format} image")
        # Downscale before colour management and rotation, which then touch fewer pixels.
        current = _resize(_working_mode(img), first, pool)
        current = _drop_opaque_alpha(_to_srgb(current, icc))
        if orientation in _TRANSPOSE:
            current = current.transpose(_TRANSPOSE[orientation])
        if current is img:
            # Threads below share this image; a plain copy has no file state to race on.
            current = img.copy()
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
        current = _resize(current, (width, height), pool)
        slots.append(pool.submit(_encode, current, size, "WEBP"))
        slots.append(_encode(current, size, "JPEG"))
        report(wait=False)
    report(wait=True)
    return [slot.result() if isinstance(slot, Future) else slot for slot in slots]


def analyse(
    fp: BinaryIO,
    *,
    max_pixels: int,
    on_step: ProgressCallback | None = None,
    allowed_formats: frozenset[str] = DEFAULT_FORMATS,
) -> Analysis:
    """Describe an image: size, EXIF summary, colours, perceptual hash and a tiny placeholder.
    Animated images are analysed from their first frame."""
    formats = _formats(allowed_formats)
    progress = _Progress(on_step, 5)
    try:
        with _opened(fp, formats, max_pixels) as img:
            fmt, mode = _format_of(img), img.mode
            frames = _frames(img)
            exif = _exif_summary(img)
            width, height = _upright(img.size, exif.orientation)
            icc = _icc(img)
            box = _fit(img.size, ANALYSIS_SIZE)
            if fmt == "JPEG":
                img.draft("RGB", box)
            _decode(img)
            progress.step("decoded image")
            work = _resize(_working_mode(img), _fit(img.size, ANALYSIS_SIZE))
            work = _to_srgb(work, icc)
            if exif.orientation in _TRANSPOSE:
                work = work.transpose(_TRANSPOSE[exif.orientation])
        progress.step("read EXIF")
        dominant, average = _colours(work)
        progress.step("measured colours")
        phash = _phash(work)
        progress.step("computed perceptual hash")
        placeholder = _placeholder(work)
        progress.step("made placeholder")
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
        )
    finally:
        fp.seek(0)


def hamming(a: str, b: str) -> int:
    """Count differing bits between two hex perceptual hashes; <= 10 means visually similar."""
    if len(a) != len(b):
        raise ValueError(f"hashes differ in length: {len(a)} and {len(b)}")
    return (int(a, 16) ^ int(b, 16)).bit_count()


# ------------------------------------------------------------------ opening and checks


@contextmanager
def _opened(
    fp: BinaryIO, formats: tuple[str, ...], max_pixels: int
) -> Iterator[ImageFile.ImageFile]:
    """Open ``fp`` from the start (header only) and enforce the pixel limit before any decode."""
    fp.seek(0)
    head = fp.read(4096)
    if not head:
        raise ImageRejected(EMPTY_FILE)
    fp.seek(0)
    limit = _pixel_limit(max_pixels)
    try:
        img = Image.open(fp, formats=formats)
    except _BOMB_ERRORS as exc:
        raise ImageRejected(_too_large_from_pillow(str(exc), limit)) from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected(_unidentified(head, formats)) from exc
    except MemoryError as exc:
        raise ImageRejected(TOO_BIG_TO_PROCESS) from exc
    except _PIL_ERRORS as exc:
        raise ImageRejected(DAMAGED) from exc
    # Leaving the with block drops Pillow's reference without closing the caller's file.
    with img:
        width, height = img.size
        if width <= 0 or height <= 0:
            raise ImageRejected(ZERO_SIZE)
        if width * height > limit:
            raise ImageRejected(_too_large(width * height, limit, (width, height)))
        yield img


def _pixel_limit(max_pixels: int) -> int:
    """Our limit, tightened to Pillow's own bomb threshold so its warning always means rejection."""
    if max_pixels <= 0:
        raise ValueError("max_pixels must be positive")
    pillow_limit = Image.MAX_IMAGE_PIXELS
    return min(max_pixels, pillow_limit) if pillow_limit else max_pixels


def _formats(allowed: frozenset[str]) -> tuple[str, ...]:
    """Allowed formats that this Pillow can open, in a stable order."""
    Image.init()
    wanted = {name.upper() for name in allowed}
    ordered = [name for name in _ORDER if name in wanted] + sorted(wanted - set(_ORDER))
    return tuple(name for name in ordered if name in Image.OPEN)


def _require_truncation_checks() -> None:
    """Refuse to validate when someone enabled Pillow's global "accept truncated files" switch."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is enabled, so truncated uploads cannot be "
            "detected; do not enable it in a process that validates uploads"
        )


def _guard(action: Callable[[], object]) -> None:
    """Run a Pillow call, turning any failure on bad data into a user-readable rejection."""
    try:
        action()
    except _BOMB_ERRORS as exc:
        raise ImageRejected(_too_large_from_pillow(str(exc), None)) from exc
    except MemoryError as exc:
        raise ImageRejected(TOO_BIG_TO_PROCESS) from exc
    except _PIL_ERRORS as exc:
        raise ImageRejected(DAMAGED) from exc


def _check_pixels_decode(img: ImageFile.ImageFile, info: ImageInfo, limit: int) -> None:
    """Decode the pixel data so truncated files fail now rather than in a worker later."""
    if info.format == "JPEG":
        # verify() ignores JPEG data; a 1/8-scale decode still reads every entropy-coded byte.
        img.draft("RGB", (max(1, info.width // 8), max(1, info.height // 8)))
    _guard(img.load)
    # Later frames are decoded too, within the same pixel budget as a single image.
    budget = limit - info.width * info.height
    for index in range(1, info.frames):
        budget -= info.width * info.height
        if budget < 0:
            break
        _guard(partial(img.seek, index))
        _guard(img.load)


def _decode(img: ImageFile.ImageFile) -> None:
    """Fully decode the current frame; failures become a "could not decode" rejection."""
    _require_truncation_checks()
    try:
        img.load()
    except _BOMB_ERRORS as exc:
        raise ImageRejected(_too_large_from_pillow(str(exc), None)) from exc
    except MemoryError as exc:
        raise ImageRejected(TOO_BIG_TO_PROCESS) from exc
    except _PIL_ERRORS as exc:
        raise ImageRejected(CANNOT_DECODE) from exc


def _format_of(img: Image.Image) -> str:
    """Pillow's format name, treating MPO (multi-picture camera JPEG) as the JPEG it is."""
    fmt = img.format or ""
    return "JPEG" if fmt == "MPO" else fmt


def _frames(img: Image.Image) -> int:
    """Frame count; MPO extra pictures (previews, depth maps) are not animation frames."""
    if _format_of(img) == "JPEG":
        return 1
    try:
        return max(1, int(getattr(img, "n_frames", 1)))
    except _PIL_ERRORS as exc:
        raise ImageRejected(DAMAGED) from exc


def _mime(fmt: str) -> str:
    return Image.MIME.get(fmt, "application/octet-stream")


def _display(fmt: str) -> str:
    return _DISPLAY_NAMES.get(fmt, fmt)


def _allowed_text(formats: Sequence[str]) -> str:
    return ", ".join(_display(f) for f in formats)


def _megapixels(pixels: int) -> str:
    value = pixels / 1_000_000
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}".removesuffix(".0")


def _too_large(pixels: int, limit: int, size: tuple[int, int] | None) -> str:
    dims = f"{size[0]}x{size[1]} = " if size else ""
    return (
        f"image is {dims}{_megapixels(pixels)} megapixels, "
        f"the limit is {_megapixels(limit)} megapixels"
    )


def _too_large_from_pillow(message: str, limit: int | None) -> str:
    """Pillow only reports a pixel count for bombs it refuses to open; reuse it when present."""
    match = re.search(r"\((\d+) pixels\)", message)
    if match and limit:
        return _too_large(int(match.group(1)), limit, None)
    if limit:
        return f"image is too large, the limit is {_megapixels(limit)} megapixels"
    return TOO_BIG_TO_PROCESS


def _unidentified(head: bytes, formats: Sequence[str]) -> str:
    """Explain why Pillow could not open the file, from its first bytes only."""
    sniffed = _sniff(head)
    if sniffed is None:
        return f"not an image (allowed formats: {_allowed_text(formats)})"
    if sniffed not in formats:
        return f"format {_display(sniffed)} is not allowed (allowed: {_allowed_text(formats)})"
    size = _header_size(head)
    if size is not None and 0 in size:
        return ZERO_SIZE
    return DAMAGED


def _sniff(head: bytes) -> str | None:
    """Name a file format by its magic bytes, without handing the data to any decoder."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brands = head[8:32]
        if b"avif" in brands or b"avis" in brands:
            return "AVIF"
        if any(b in brands for b in (b"heic", b"heix", b"hevc", b"heif", b"mif1")):
            return "HEIC"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "JXL"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    bmp_headers = (12, 40, 52, 56, 64, 108, 124)
    if (
        head.startswith(b"BM")
        and len(head) >= 18
        and struct.unpack("<I", head[14:18])[0] in bmp_headers
    ):
        return "BMP"
    if head.startswith(b"8BPS"):
        return "PSD"
    if head.startswith(b"%PDF-"):
        return "PDF"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and b"<svg" in text:
        return "SVG"
    return None


def _header_size(head: bytes) -> tuple[int, int] | None:
    """Declared dimensions of a PNG or GIF header, used to explain files Pillow refused."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return int(width), int(height)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return int(width), int(height)
    return None


# --------------------------------------------------------------------- pixel pipeline


class _Progress:
    """Turns "one more step done" into a percentage that reaches 100 on the last step."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback = callback
        self.total = max(1, total)
        self.done = 0

    def step(self, message: str) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(min(100, round(100 * self.done / self.total)), message)


def _targets(sizes: Sequence[int]) -> list[int]:
    targets = sorted({int(size) for size in sizes}, reverse=True)
    if any(size <= 0 for size in targets):
        raise ValueError(f"sizes must be positive, got {list(sizes)}")
    return targets


def _orientation(img: Image.Image) -> int:
    """EXIF (or XMP) orientation 1-8; anything unreadable counts as upright."""
    try:
        value = img.getexif().get(ExifTags.Base.Orientation, 1)
    except _PIL_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    width, height = size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _stored(size: Sequence[int], orientation: int) -> tuple[int, int]:
    width, height = size[0], size[1]
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """Scale ``size`` so its longest side is ``longest``, never enlarging."""
    width, height = size
    if max(width, height) <= longest:
        return width, height
    if width >= height:
        return longest, max(1, round(height * longest / width))
    return max(1, round(width * longest / height)), longest


def _plan(width: int, height: int, targets: Sequence[int]) -> list[tuple[int, int, int]]:
    """(size, width, height) per rendition, largest first, without repeated dimensions."""
    plan: list[tuple[int, int, int]] = []
    seen: set[tuple[int, int]] = set()
    for size in targets:
        dims = _fit((width, height), size)
        if dims not in seen:
            seen.add(dims)
            plan.append((size, *dims))
    return plan


def _icc(img: Image.Image) -> bytes | None:
    value = img.info.get("icc_profile")
    return value if isinstance(value, bytes) and value else None


def _working_mode(img: Image.Image) -> Image.Image:
    """Bring any mode to 8-bit L, LA, RGB, RGBA or CMYK, keeping transparency as alpha."""
    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        if mode in ("L", "RGB") and "transparency" in img.info:
            return img.convert("RGBA")
        return img
    if mode in ("P", "PA"):
        return img.convert("RGBA" if img.has_transparency_data else "RGB")
    if mode == "1":
        return img.convert("L")
    if mode.startswith("I;16") or mode == "I":
        _low, high = img.getextrema()
        # Plain convert("L") clips 16-bit values at 255, turning the picture white.
        scale = 1 / 257 if isinstance(high, (int, float)) and high > 255 else 1
        return img.convert("I").point(lambda value: value * scale).convert("L")
    if mode == "F":
        _low, high = img.getextrema()
        scale = 255 if isinstance(high, (int, float)) and high <= 1.0 else 1
        return img.point(lambda value: value * scale).convert("L")
    if mode in ("La", "RGBa"):
        return img.convert(mode.upper())
    return img.convert("RGBA" if img.has_transparency_data else "RGB")


def _resize(
    img: Image.Image, size: tuple[int, int], pool: ThreadPoolExecutor | None = None
) -> Image.Image:
    """Lanczos downscale; big images are split in two halves resized in parallel."""
    if img.size == size:
        return img
    if pool is None or img.width * img.height < _PARALLEL_RESIZE_PIXELS or size[1] < 2:
        # reducing_gap lets Pillow box-reduce by whole factors first: much faster, same look.
        return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    factor = (
        max(1, int(img.width / size[0] / REDUCING_GAP)),
        max(1, int(img.height / size[1] / REDUCING_GAP)),
    )
    if factor != (1, 1):
        # Reduce the whole image first so that both halves share one sampling grid.
        img = img.reduce(factor)
    # A resize box only maps coordinates: the filter still reads pixels across the split,
    # so the halves join without a seam (identical to a single resize, give or take 1/255).
    top_rows = size[1] // 2
    split = img.height * top_rows / size[1]
    top = pool.submit(
        img.resize, (size[0], top_rows), Image.Resampling.LANCZOS, (0, 0, img.width, split)
    )
    bottom = img.resize(
        (size[0], size[1] - top_rows),
        Image.Resampling.LANCZOS,
        (0, split, img.width, img.height),
    )
    result = Image.new(img.mode, size)
    result.paste(top.result(), (0, 0))
    result.paste(bottom, (0, top_rows))
    return result


@lru_cache(maxsize=1)
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@lru_cache(maxsize=16)
def _transform(icc: bytes, in_mode: str) -> ImageCms.ImageCmsTransform:
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.buildTransform(
        source, _srgb(), in_mode, "RGB", renderingIntent=ImageCms.Intent.PERCEPTUAL
    )


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Return RGB or RGBA in sRGB, converting through the embedded ICC profile when there is one."""
    has_alpha = img.mode in ("LA", "RGBA")
    if icc is None:
        if img.mode in ("RGB", "RGBA"):
            return img
        return img.convert("RGBA" if has_alpha else "RGB")
    base = img.convert(img.mode[:-1]) if has_alpha else img
    try:
        converted = _transform(icc, base.mode).apply(base)
    except _PROFILE_ERRORS:
        # A broken or mismatched profile should not cost the user their upload: show it as sRGB.
        converted = base.convert("RGB")
    if has_alpha:
        converted.putalpha(img.getchannel("A"))
    return converted


def _drop_opaque_alpha(img: Image.Image) -> Image.Image:
    """Fully opaque RGBA is stored as RGB: smaller files and no pointless alpha plane."""
    if img.mode == "RGBA" and img.getchannel("A").getextrema() == (255, 255):
        return img.convert("RGB")
    return img


def _flatten(img: Image.Image) -> Image.Image:
    """Composite on white, because JPEG has no alpha channel."""
    if img.mode != "RGBA":
        return img.convert("RGB") if img.mode != "RGB" else img
    background = Image.new("RGB", img.size, _WHITE)
    background.paste(img, mask=img.getchannel("A"))
    return background


def _encode(img: Image.Image, size: int, fmt: str) -> Rendition:
    """Encode without any metadata: Pillow would otherwise copy comments/XMP from ``info``."""
    out = img if fmt == "WEBP" else _flatten(img)
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
        content_type=_mime(fmt),
        data=buffer.getvalue(),
    )


# ----------------------------------------------------------------------------- analysis


def _colours(img: Image.Image) -> tuple[list[str], str]:
    """Up to five dominant colours by pixel share, and the mean colour, of visible pixels."""
    small = _resize(img, _fit(img.size, 64))
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
    grey = _flatten(img).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    pixels = list(grey.tobytes())
    rows = [pixels[32 * y : 32 * y + 32] for y in range(32)]
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
    tiny = _resize(img, _fit(img.size, PLACEHOLDER_SIZE))
    tiny = _drop_opaque_alpha(tiny.copy())
    tiny.info = {}
    uri = ""
    for quality in (50, 30, 10):
        buffer = io.BytesIO()
        tiny.save(buffer, "WEBP", quality=quality, method=6)
        uri = "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        if len(uri) <= PLACEHOLDER_MAX_CHARS:
            break
    return uri


def _exif_summary(img: Image.Image) -> ExifSummary:
    """Read camera facts defensively: bad EXIF gives empty fields, never a rejected upload."""
    try:
        exif = img.getexif()
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except _PIL_ERRORS:
        return ExifSummary()
    orientation = exif.get(ExifTags.Base.Orientation, 1)
    lens_parts = [_text(sub.get(ExifTags.Base.LensMake)), _text(sub.get(ExifTags.Base.LensModel))]
    lens_make, lens_model = lens_parts
    if lens_make and lens_model and lens_model.lower().startswith(lens_make.lower()):
        lens_make = None
    lens = " ".join(part for part in (lens_make, lens_model) if part) or None
    date = _date(
        sub.get(ExifTags.Base.DateTimeOriginal), sub.get(ExifTags.Base.OffsetTimeOriginal)
    ) or _date(sub.get(ExifTags.Base.DateTimeDigitized), None)
    iso = _number(sub.get(ExifTags.Base.ISOSpeedRatings))
    return ExifSummary(
        make=_text(exif.get(ExifTags.Base.Make)),
        model=_text(exif.get(ExifTags.Base.Model)),
        lens=lens,
        date_taken=date,
        exposure_time=_number(sub.get(ExifTags.Base.ExposureTime)),
        f_number=_number(sub.get(ExifTags.Base.FNumber)),
        iso=int(iso) if iso is not None else None,
        focal_length=_number(sub.get(ExifTags.Base.FocalLength)),
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1,
        gps=_gps(gps_ifd),
    )


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    cleaned = value.replace("\x00", "").strip()
    return cleaned[:200] or None


def _number(value: object) -> float | None:
    """A finite, non-negative EXIF number; tuples (e.g. ISO lists) use their first item."""
    if isinstance(value, (tuple, list)):
        value = value[0] if value else None
    # IFDRational is a numbers.Rational; a zero denominator makes it NaN, filtered below.
    if not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


_DATE = re.compile(r"(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"[+-]\d{2}:\d{2}")


def _date(value: object, offset: object) -> str | None:
    """EXIF "YYYY:MM:DD HH:MM:SS" (+ optional offset) as ISO 8601, or None when invalid."""
    text = _text(value)
    match = _DATE.match(text or "")
    if not match:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        moment = datetime(year, month, day, hour, minute, second)  # EXIF time is local
    except ValueError:
        return None
    zone = _text(offset)
    return moment.isoformat() + (zone if zone and _OFFSET.fullmatch(zone) else "")


def _degrees(value: object) -> float | None:
    """Degrees, minutes, seconds (any leading subset) to decimal degrees."""
    parts = value if isinstance(value, (tuple, list)) else (value,)
    values = [_number(part) for part in parts[:3]]
    if not values or any(v is None for v in values):
        return None
    return sum(v / 60.0**i for i, v in enumerate(values) if v is not None)


def _gps(ifd: dict[int, Any]) -> GpsPosition | None:
    lat = _degrees(ifd.get(ExifTags.GPS.GPSLatitude))
    lon = _degrees(ifd.get(ExifTags.GPS.GPSLongitude))
    if lat is None or lon is None or lat > 90 or lon > 180:
        return None
    if (_text(ifd.get(ExifTags.GPS.GPSLatitudeRef)) or "N").upper().startswith("S"):
        lat = -lat
    if (_text(ifd.get(ExifTags.GPS.GPSLongitudeRef)) or "E").upper().startswith("W"):
        lon = -lon
    return GpsPosition(lat=round(lat, 7), lon=round(lon, 7))

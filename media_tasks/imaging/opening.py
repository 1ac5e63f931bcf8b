"""Opening an untrusted file with Pillow: only allowed formats, by content, within a pixel limit.

``opened`` reads the header only; nothing here decodes pixel data.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO, Final

from PIL import Image, ImageFile, UnidentifiedImageError, features

from media_tasks.imaging.errors import (
    DAMAGED,
    EMPTY_FILE,
    ZERO_SIZE,
    ImageRejected,
    rejecting,
    too_large,
)

# AVIF is only offered when this Pillow build can actually decode it.
DEFAULT_FORMATS: Final[frozenset[str]] = frozenset(
    {"JPEG", "PNG", "WEBP", "GIF"} | ({"AVIF"} if features.check("avif") else set())
)

_DISPLAY_NAMES: Final = {"WEBP": "WebP", "JXL": "JPEG XL"}
_ORDER: Final = ("JPEG", "PNG", "WEBP", "GIF", "AVIF")


@contextmanager
def opened(
    fp: BinaryIO, formats: tuple[str, ...], max_pixels: int
) -> Iterator[ImageFile.ImageFile]:
    """Open ``fp`` from the start (header only) and enforce the pixel limit before any decode."""
    fp.seek(0)
    head = fp.read(4096)
    if not head:
        raise ImageRejected(EMPTY_FILE)
    fp.seek(0)
    limit = pixel_limit(max_pixels)
    with rejecting(DAMAGED, limit=limit):
        try:
            img = Image.open(fp, formats=formats)
        except UnidentifiedImageError as exc:
            raise ImageRejected(_unidentified(head, formats)) from exc
    # Leaving the with block drops Pillow's reference without closing the caller's file.
    with img:
        width, height = img.size
        if width <= 0 or height <= 0:
            raise ImageRejected(ZERO_SIZE)
        if width * height > limit:
            raise ImageRejected(too_large(width * height, limit, (width, height)))
        yield img


def pixel_limit(max_pixels: int) -> int:
    """Our limit, tightened to Pillow's own bomb threshold so its warning always means rejection."""
    if max_pixels <= 0:
        raise ValueError("max_pixels must be positive")
    pillow_limit = Image.MAX_IMAGE_PIXELS
    return min(max_pixels, pillow_limit) if pillow_limit else max_pixels


def allowed(formats: frozenset[str]) -> tuple[str, ...]:
    """Allowed formats that this Pillow can open, in a stable order."""
    Image.init()
    wanted = {name.upper() for name in formats}
    ordered = [name for name in _ORDER if name in wanted] + sorted(wanted - set(_ORDER))
    return tuple(name for name in ordered if name in Image.OPEN)


def require_truncation_checks() -> None:
    """Refuse to validate when someone enabled Pillow's global "accept truncated files" switch."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is enabled, so truncated uploads cannot be "
            "detected; do not enable it in a process that validates uploads"
        )


def format_of(img: Image.Image) -> str:
    """Pillow's format name, treating MPO (multi-picture camera JPEG) as the JPEG it is."""
    fmt = img.format or ""
    return "JPEG" if fmt == "MPO" else fmt


def mime(fmt: str) -> str:
    return Image.MIME.get(fmt, "application/octet-stream")


def _display(fmt: str) -> str:
    return _DISPLAY_NAMES.get(fmt, fmt)


def _allowed_text(formats: Sequence[str]) -> str:
    return ", ".join(_display(f) for f in formats)


def _unidentified(head: bytes, formats: Sequence[str]) -> str:
    """Explain why Pillow could not open the file, from its first bytes only."""
    sniffed = sniff(head)
    if sniffed is None:
        return f"not an image (allowed formats: {_allowed_text(formats)})"
    if sniffed not in formats:
        return f"format {_display(sniffed)} is not allowed (allowed: {_allowed_text(formats)})"
    size = _header_size(head)
    if size is not None and 0 in size:
        return ZERO_SIZE
    return DAMAGED


def sniff(head: bytes) -> str | None:
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

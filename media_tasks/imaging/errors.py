"""What goes wrong with an uploaded image, in words a user can read.

Pillow fails on malformed input with a spread of exception types; ``rejecting`` turns all of
them into one ``ImageRejected`` whose ``reason`` the API and the page show as it is.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from PIL import Image, ImageCms

EMPTY_FILE: Final = "empty file"
DAMAGED: Final = "truncated or damaged image"
ZERO_SIZE: Final = "image has zero width or height"
CANNOT_DECODE: Final = "could not decode the image: the file is truncated or damaged"
TOO_BIG_TO_PROCESS: Final = "image is too large to process"
TOO_MANY_BLOCKS: Final = "image is made of too many small blocks to check"

# What Pillow raises on malformed input; anything else is a bug in this package.
PIL_ERRORS: Final[tuple[type[BaseException], ...]] = (
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
PROFILE_ERRORS: Final[tuple[type[BaseException], ...]] = (*PIL_ERRORS, MemoryError)
BOMB_ERRORS: Final = (Image.DecompressionBombError, Image.DecompressionBombWarning)


class ImageRejected(Exception):
    """The upload is not an acceptable image; ``reason`` is safe to show to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextmanager
def rejecting(reason: str, *, limit: int | None = None) -> Iterator[None]:
    """Turn Pillow's failures on bad data inside the block into ImageRejected(``reason``);
    bombs and memory exhaustion get their own reasons (``limit``: the pixel limit, if known)."""
    try:
        yield
    except BOMB_ERRORS as exc:
        raise ImageRejected(too_large_from_pillow(str(exc), limit)) from exc
    except MemoryError as exc:
        raise ImageRejected(TOO_BIG_TO_PROCESS) from exc
    except PIL_ERRORS as exc:
        raise ImageRejected(reason) from exc


def megapixels(pixels: int) -> str:
    value = pixels / 1_000_000
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}".removesuffix(".0")


def too_large(pixels: int, limit: int, size: tuple[int, int] | None) -> str:
    dims = f"{size[0]}x{size[1]} = " if size else ""
    return (
        f"image is {dims}{megapixels(pixels)} megapixels, "
        f"the limit is {megapixels(limit)} megapixels"
    )


def too_large_from_pillow(message: str, limit: int | None) -> str:
    """Pillow only reports a pixel count for bombs it refuses to open; reuse it when present."""
    match = re.search(r"\((\d+) pixels\)", message)
    if match and limit:
        return too_large(int(match.group(1)), limit, None)
    if limit:
        return f"image is too large, the limit is {megapixels(limit)} megapixels"
    return TOO_BIG_TO_PROCESS


def too_many_frames(limit: int) -> str:
    return f"image has too many frames (more than {limit})"


def frames_too_large(pixels: int, limit: int) -> str:
    return (
        f"image frames add up to {megapixels(pixels)} megapixels, "
        f"the limit is {megapixels(limit)} megapixels"
    )

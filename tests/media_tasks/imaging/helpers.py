"""Calling media_tasks.imaging on bytes, and comparing the pictures that come out."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat, features

from media_tasks.imaging import (
    ImageRejected,
    Rendition,
    analyse,
    check_decodes,
    inspect_upload,
    make_renditions,
)

MAX_PIXELS = 50_000_000
SIZES = (1600, 800, 320)
HAS_AVIF = bool(features.check("avif"))
ALLOWED_TEXT = "JPEG, PNG, WebP, GIF" + (", AVIF" if HAS_AVIF else "")

Pixel = tuple[int, ...]


def renditions(data: bytes, sizes: tuple[int, ...] = SIZES, **kwargs: Any) -> list[Rendition]:
    return make_renditions(io.BytesIO(data), sizes=sizes, max_pixels=MAX_PIXELS, **kwargs)


def one(data: bytes, size: int, fmt: str = "WEBP") -> Image.Image:
    """The decoded rendition of ``size`` in ``fmt``."""
    (match,) = [r for r in renditions(data, (size,)) if r.format == fmt]
    return reopen(match)


def reopen(rendition: Rendition) -> Image.Image:
    img = Image.open(io.BytesIO(rendition.data))
    img.load()
    return img


def rejection(action: Callable[[io.BytesIO], object], data: bytes) -> str:
    with pytest.raises(ImageRejected) as caught:
        action(io.BytesIO(data))
    return caught.value.reason


def inspect(fp: io.BytesIO) -> object:
    return inspect_upload(fp, max_pixels=MAX_PIXELS)


def check(fp: io.BytesIO) -> object:
    return check_decodes(fp, max_pixels=MAX_PIXELS)


def render(fp: io.BytesIO) -> object:
    return make_renditions(fp, sizes=SIZES, max_pixels=MAX_PIXELS)


def analysis(fp: io.BytesIO) -> object:
    return analyse(fp, max_pixels=MAX_PIXELS)


def near(actual: Pixel, expected: Pixel, tolerance: int = 12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return max(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean)


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)

"""From an opened image to a small working copy: decode, 8-bit mode, downscale, sRGB.

Renditions and analysis both start here; the steps are ordered so that the expensive ones
(colour management, rotation) touch as few pixels as possible.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Final

from PIL import Image, ImageCms, ImageFile

from media_tasks.imaging.errors import CANNOT_DECODE, PROFILE_ERRORS, rejecting
from media_tasks.imaging.opening import format_of, require_truncation_checks

REDUCING_GAP: Final = 3.0
# Below this many source pixels a resize is too quick to be worth splitting across threads.
_PARALLEL_RESIZE_PIXELS: Final = 2_000_000
_WHITE: Final = (255, 255, 255)


def fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """Scale ``size`` so its longest side is ``longest``, never enlarging."""
    width, height = size
    if max(width, height) <= longest:
        return width, height
    if width >= height:
        return longest, max(1, round(height * longest / width))
    return max(1, round(width * longest / height)), longest


def decode(img: ImageFile.ImageFile, *, covering: tuple[int, int]) -> None:
    """Fully decode the current frame; failures become a "could not decode" rejection.
    libjpeg scales while decoding: a JPEG decodes at 1/2 to 1/8 size if that still covers
    ``covering``."""
    if format_of(img) == "JPEG":
        img.draft("RGB", covering)
    require_truncation_checks()
    with rejecting(CANNOT_DECODE):
        img.load()


def working_mode(img: Image.Image) -> Image.Image:
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


def resize(
    img: Image.Image, size: tuple[int, int], pool: ThreadPoolExecutor | None = None
) -> Image.Image:
    """Lanczos downscale; big images are split in two halves resized in parallel."""
    if img.size == size:
        return img
    if pool is None or img.width * img.height < _PARALLEL_RESIZE_PIXELS or size[1] < 2:
        # reducing_gap lets Pillow box-reduce by whole factors first: much faster, same look.
        return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    if img.mode in ("LA", "RGBA"):
        # Pillow premultiplies alpha inside every resize: for each half, that would be a
        # converted copy of the whole image. Premultiply once instead.
        return resize(img.convert(img.mode[:-1] + "a"), size, pool).convert(img.mode)
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


def to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Return RGB or RGBA in sRGB, converting through the embedded ICC profile when there is one."""
    has_alpha = img.mode in ("LA", "RGBA")
    if icc is None:
        if img.mode in ("RGB", "RGBA"):
            return img
        return img.convert("RGBA" if has_alpha else "RGB")
    base = img.convert(img.mode[:-1]) if has_alpha else img
    try:
        converted = _transform(icc, base.mode).apply(base)
    except PROFILE_ERRORS:
        # A broken or mismatched profile should not cost the user their upload: show it as sRGB.
        converted = base.convert("RGB")
    if has_alpha:
        converted.putalpha(img.getchannel("A"))
    return converted


def drop_opaque_alpha(img: Image.Image) -> Image.Image:
    """Fully opaque RGBA is stored as RGB: smaller files and no pointless alpha plane."""
    if img.mode == "RGBA" and img.getchannel("A").getextrema() == (255, 255):
        return img.convert("RGB")
    return img


def flatten(img: Image.Image) -> Image.Image:
    """Composite on white, because JPEG has no alpha channel."""
    if img.mode != "RGBA":
        return img.convert("RGB") if img.mode != "RGB" else img
    background = Image.new("RGB", img.size, _WHITE)
    background.paste(img, mask=img.getchannel("A"))
    return background

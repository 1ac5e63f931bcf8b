"""What inspect_upload accepts and refuses, and why: the check made in the upload request."""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from media_tasks.imaging import (
    DEFAULT_FORMATS,
    ImageRejected,
    analyse,
    inspect_upload,
    make_renditions,
)
from tests.media_tasks import images
from tests.media_tasks.images import RED
from tests.media_tasks.imaging.helpers import (
    ALLOWED_TEXT,
    HAS_AVIF,
    MAX_PIXELS,
    SIZES,
    analysis,
    inspect,
    rejection,
    render,
)


@pytest.mark.parametrize(
    ("make", "fmt", "mime", "size", "frames"),
    [
        pytest.param(
            lambda: images.picture("JPEG"), "JPEG", "image/jpeg", (128, 128), 1, id="jpeg"
        ),
        pytest.param(lambda: images.picture("PNG"), "PNG", "image/png", (128, 128), 1, id="png"),
        pytest.param(lambda: images.picture("GIF"), "GIF", "image/gif", (128, 128), 1, id="gif"),
        pytest.param(
            lambda: images.picture("WEBP"), "WEBP", "image/webp", (128, 128), 1, id="webp"
        ),
        pytest.param(
            lambda: images.picture("AVIF"),
            "AVIF",
            "image/avif",
            (128, 128),
            1,
            id="avif",
            marks=pytest.mark.skipif(not HAS_AVIF, reason="Pillow built without AVIF"),
        ),
        pytest.param(
            lambda: images.oriented_photo(6),
            "JPEG",
            "image/jpeg",
            (128, 128),
            1,
            id="orientation-6",
        ),
        pytest.param(
            images.cmyk_jpeg_with_metadata, "JPEG", "image/jpeg", (100, 100), 1, id="cmyk-metadata"
        ),
        pytest.param(images.apng_16bit, "PNG", "image/apng", (128, 64), 3, id="apng-16bit"),
        pytest.param(images.long_animated_gif, "GIF", "image/gif", (245, 245), 42, id="gif-42"),
        pytest.param(images.nonsense_gps_jpeg, "JPEG", "image/jpeg", (8, 8), 1, id="exif-gps"),
        pytest.param(images.png_with_srgb_profile, "PNG", "image/png", (57, 57), 1, id="icc"),
        pytest.param(
            images.palette_png_one_transparent_colour, "PNG", "image/png", (64, 64), 1, id="p-trns"
        ),
        pytest.param(
            images.rgb_png_transparent_colour, "PNG", "image/png", (64, 64), 1, id="rgb-trns"
        ),
    ],
)
def test_inspect_accepts_everyday_kinds_of_image(
    make: Callable[[], bytes], fmt: str, mime: str, size: tuple[int, int], frames: int
) -> None:
    info = inspect_upload(io.BytesIO(make()), max_pixels=MAX_PIXELS)
    assert (info.format, info.mime_type, (info.width, info.height), info.frames) == (
        fmt,
        mime,
        size,
        frames,
    )


@pytest.mark.parametrize(
    ("make", "fmt", "size", "frames"),
    [
        (images.progressive_jpeg, "JPEG", (320, 240), 1),
        (images.cmyk_jpeg, "JPEG", (120, 80), 1),
        (images.png16_gradient, "PNG", (256, 32), 1),
        (images.palette_png_transparent, "PNG", (64, 64), 1),
        (images.animated_gif, "GIF", (60, 40), 3),
        (images.mpo, "JPEG", (200, 150), 1),  # multi-picture camera JPEG is still a JPEG
        (lambda: images.oriented_jpeg(6), "JPEG", (200, 300), 1),  # as stored, not upright
    ],
)
def test_inspect_accepts_generated_images(
    make: Callable[[], bytes], fmt: str, size: tuple[int, int], frames: int
) -> None:
    info = inspect_upload(io.BytesIO(make()), max_pixels=MAX_PIXELS)
    assert (info.format, (info.width, info.height), info.frames) == (fmt, size, frames)
    assert info.mime_type == Image.MIME[fmt]


def test_inspect_judges_content_not_filename_and_rewinds(tmp_path: Path) -> None:
    path = tmp_path / "holiday.jpg"  # really a PNG
    path.write_bytes(images.solid(RED, fmt="PNG"))
    with path.open("rb") as fp:
        fp.read(10)
        assert inspect_upload(fp, max_pixels=MAX_PIXELS).format == "PNG"
        assert fp.tell() == 0
        assert not fp.closed
    text = tmp_path / "photo.png"
    text.write_bytes(images.TEXT)
    with text.open("rb") as fp:
        with pytest.raises(ImageRejected):
            inspect_upload(fp, max_pixels=MAX_PIXELS)
        assert fp.tell() == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(images.EMPTY, "empty file", id="zero-bytes"),
        pytest.param(
            images.TEXT, f"not an image (allowed formats: {ALLOWED_TEXT})", id="text-file"
        ),
        pytest.param(images.SVG, f"format SVG is not allowed (allowed: {ALLOWED_TEXT})", id="svg"),
        pytest.param(
            images.bmp(), f"format BMP is not allowed (allowed: {ALLOWED_TEXT})", id="bmp"
        ),
        pytest.param(images.truncated_jpeg(), "truncated or damaged image", id="cut-jpeg"),
        pytest.param(images.jpeg_missing_its_end(), "truncated or damaged image", id="trunc-jpg"),
        pytest.param(images.truncated_png(), "truncated or damaged image", id="trunc-png"),
        pytest.param(images.broken_png(), "truncated or damaged image", id="broken-png"),
        pytest.param(images.png_with_bad_checksum(), "truncated or damaged image", id="bad-crc"),
        pytest.param(images.png_with_garbage_chunk(), "truncated or damaged image", id="bad-chunk"),
        pytest.param(images.zero_width_gif(), "image has zero width or height", id="zero-width"),
    ],
)
def test_inspect_rejects_with_a_clear_reason(data: bytes, reason: str) -> None:
    assert rejection(inspect, data) == reason


def test_truncated_png_half_is_rejected() -> None:
    whole = images.save(images.photo_like_image(200, 150), "PNG")
    assert rejection(inspect, whole[: len(whole) * 2 // 3]) == "truncated or damaged image"


def test_allowed_formats_restrict_what_is_accepted() -> None:
    png = images.solid(RED, fmt="PNG")
    fp = io.BytesIO(png)
    with pytest.raises(ImageRejected) as caught:
        inspect_upload(fp, max_pixels=MAX_PIXELS, allowed_formats=frozenset({"JPEG"}))
    assert caught.value.reason == "format PNG is not allowed (allowed: JPEG)"
    assert str(caught.value) == caught.value.reason
    assert "PNG" in DEFAULT_FORMATS


@pytest.mark.parametrize("action", [inspect, render, analysis])
def test_decompression_bomb_gif_is_refused_before_decoding(
    action: Callable[[io.BytesIO], object],
) -> None:
    reason = rejection(action, images.decompression_bomb_gif())
    assert re.fullmatch(r"image is \d+ megapixels, the limit is 50 megapixels", reason)


@pytest.mark.parametrize("action", [inspect, render, analysis])
def test_huge_genuine_png_is_refused_before_decoding(
    huge_png: bytes, action: Callable[[io.BytesIO], object]
) -> None:
    with warnings.catch_warnings():
        # Pillow 13 also warns above 89 megapixels; the rejection is what matters here.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        reason = rejection(action, huge_png)
    assert reason == "image is 10000x10000 = 100 megapixels, the limit is 50 megapixels"


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    return images.huge_bilevel_png()


def test_pillow_bomb_warning_becomes_a_rejection() -> None:
    pillow_limit = Image.MAX_IMAGE_PIXELS
    assert pillow_limit is not None
    side = math.isqrt(pillow_limit) + 100  # above Pillow's warning limit, below its error limit
    bomb = images.gif_claiming(side, side)
    generous = pillow_limit * 10  # the caller allows more than Pillow considers safe
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(ImageRejected) as caught:
        inspect_upload(io.BytesIO(bomb), max_pixels=generous)
    assert caught.value.reason.startswith(f"image is {side}x{side} = ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a process that turns warnings into errors
        with pytest.raises(ImageRejected) as caught:
            inspect_upload(io.BytesIO(bomb), max_pixels=generous)
    assert "megapixels" in caught.value.reason


def test_pixel_limit_is_checked_by_every_function() -> None:
    photo = images.photo_like(640, 427)
    expected = "image is 640x427 = 0.3 megapixels, the limit is 0.1 megapixels"
    for action in (inspect_upload, analyse):
        with pytest.raises(ImageRejected) as caught:
            action(io.BytesIO(photo), max_pixels=100_000)
        assert caught.value.reason == expected
    with pytest.raises(ImageRejected) as caught:
        make_renditions(io.BytesIO(photo), sizes=SIZES, max_pixels=100_000)
    assert caught.value.reason == expected


def test_truncated_images_flag_is_never_switched_on() -> None:
    for data in (images.jpeg_missing_its_end(), images.picture("JPEG")):
        for action in (inspect, render, analysis):
            with contextlib.suppress(ImageRejected):
                action(io.BytesIO(data))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False

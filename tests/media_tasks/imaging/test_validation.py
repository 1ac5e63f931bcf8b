"""What inspect_upload (the upload request's bounded check) and check_decodes (the worker's
full decode) accept and refuse, and why."""

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
    check_decodes,
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
    check,
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


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(images.truncated_png(), id="png-cut-in-a-chunk"),
        pytest.param(images.cut(images.animated_gif(), 0.6), id="gif-cut-in-a-frame"),
        pytest.param(images.png_claiming(7071, 7071), id="png-more-pixels-than-data"),
        pytest.param(images.jpeg_claiming(6000, 6000), id="jpeg-more-pixels-than-data"),
    ],
)
def test_damage_the_blocks_show_is_refused_in_the_request(data: bytes) -> None:
    # A block running past the end of the file, or far more pixels claimed than the
    # compressed data could ever hold: seen without decoding anything.
    assert rejection(inspect, data) == "truncated or damaged image"
    assert rejection(check, data) == "truncated or damaged image"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(images.truncated_jpeg, id="jpeg-cut-in-half"),
        pytest.param(images.jpeg_missing_its_end, id="jpeg-missing-its-end"),
        pytest.param(images.png_with_short_image_data, id="png-data-stops-inside-its-chunk"),
        pytest.param(images.gif_with_a_damaged_frame, id="gif-second-frame-garbled"),
    ],
)
def test_damage_only_a_decode_finds_passes_the_request_and_fails_in_the_worker(
    make: Callable[[], bytes],
) -> None:
    data = make()
    assert inspect_upload(io.BytesIO(data), max_pixels=MAX_PIXELS).format in {"JPEG", "PNG", "GIF"}
    assert rejection(check, data) == "truncated or damaged image"
    # The thumbnails job decodes every frame too, though it shows only the first.
    assert rejection(render, data) == "could not decode the image: the file is truncated or damaged"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(images.progressive_jpeg, id="jpeg"),
        pytest.param(images.long_animated_gif, id="gif-42-frames"),
        pytest.param(images.apng_16bit, id="apng"),
        pytest.param(lambda: images.animated_webp(3), id="webp-animation"),
        pytest.param(images.mpo, id="mpo"),
    ],
)
def test_the_full_decode_accepts_what_is_whole(make: Callable[[], bytes]) -> None:
    data = make()
    assert check_decodes(io.BytesIO(data), max_pixels=MAX_PIXELS) == inspect_upload(
        io.BytesIO(data), max_pixels=MAX_PIXELS
    )


def test_allowed_formats_restrict_what_is_accepted() -> None:
    png = images.solid(RED, fmt="PNG")
    fp = io.BytesIO(png)
    with pytest.raises(ImageRejected) as caught:
        inspect_upload(fp, max_pixels=MAX_PIXELS, allowed_formats=frozenset({"JPEG"}))
    assert caught.value.reason == "format PNG is not allowed (allowed: JPEG)"
    assert str(caught.value) == caught.value.reason
    assert "PNG" in DEFAULT_FORMATS


@pytest.mark.parametrize("action", [inspect, check, render, analysis])
def test_decompression_bomb_gif_is_refused_before_decoding(
    action: Callable[[io.BytesIO], object],
) -> None:
    reason = rejection(action, images.decompression_bomb_gif())
    assert re.fullmatch(r"image is \d+ megapixels, the limit is 50 megapixels", reason)


@pytest.mark.parametrize("action", [inspect, check, render, analysis])
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
    for action in (inspect_upload, check_decodes, analyse):
        with pytest.raises(ImageRejected) as caught:
            action(io.BytesIO(photo), max_pixels=100_000)
        assert caught.value.reason == expected
    with pytest.raises(ImageRejected) as caught:
        make_renditions(io.BytesIO(photo), sizes=SIZES, max_pixels=100_000)
    assert caught.value.reason == expected


def test_truncated_images_flag_is_never_switched_on() -> None:
    for data in (images.jpeg_missing_its_end(), images.picture("JPEG")):
        for action in (inspect, check, render, analysis):
            with contextlib.suppress(ImageRejected):
                action(io.BytesIO(data))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_the_full_decode_refuses_to_run_with_truncated_images_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With Pillow's global switch on, a truncated file would decode "successfully".
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        check_decodes(io.BytesIO(images.truncated_jpeg()), max_pixels=MAX_PIXELS)


# ------------------------------------------------------------------- frames and their cost


def test_a_million_one_pixel_frames_are_refused_without_walking_them() -> None:
    million = images.gif_of_frames(1_000_000)  # 15 MB
    assert rejection(inspect, million) == "image has too many frames (more than 1000)"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(images.gif_of_frames, id="gif"),
        pytest.param(images.animated_webp, id="webp"),
        # acTL declares the animation's frames; the default image comes on top, as Pillow counts.
        pytest.param(lambda count: images.apng_declaring_frames(count - 1), id="apng"),
    ],
)
def test_frames_are_capped(make: Callable[[int], bytes]) -> None:
    ten = inspect_upload(io.BytesIO(make(10)), max_pixels=MAX_PIXELS, max_frames=10)
    assert ten.frames == 10
    with pytest.raises(ImageRejected) as caught:
        inspect_upload(io.BytesIO(make(11)), max_pixels=MAX_PIXELS, max_frames=10)
    assert caught.value.reason == "image has too many frames (more than 10)"


def test_small_frames_adding_up_to_too_many_pixels_are_refused() -> None:
    # 250 frames of one megapixel each: every frame is far below the 50-megapixel limit, the
    # animation costs 250 megapixels to decode, over the default 4 x 50.
    animation = images.gif_of_frames(250, Image.new("P", (1000, 1000)))
    expected = "image frames add up to 250 megapixels, the limit is 200 megapixels"
    assert rejection(inspect, animation) == expected
    assert rejection(check, animation) == expected
    generous = inspect_upload(
        io.BytesIO(animation), max_pixels=MAX_PIXELS, max_total_pixels=300_000_000
    )
    assert generous.frames == 250


def test_each_frame_costs_its_whole_canvas() -> None:
    # 1x1 frames, but Pillow composes every frame on the 2000x2000 canvas.
    animation = images.gif_with_frames_on_a_big_canvas(60, (2000, 2000))
    expected = "image frames add up to 240 megapixels, the limit is 200 megapixels"
    assert rejection(inspect, animation) == expected


def test_a_later_frame_that_widens_the_canvas_is_held_to_the_pixel_limit() -> None:
    widened = images.gif_widening_its_canvas((9000, 9000))
    assert Image.open(io.BytesIO(widened)).size == (1, 1)  # what the first frame says
    expected = "image is 9001x9001 = 81 megapixels, the limit is 50 megapixels"
    for action in (inspect, check, render):
        assert rejection(action, widened) == expected


def test_a_flat_50_megapixel_png_passes_the_request_and_decodes_in_the_worker() -> None:
    # 190 KiB for 200 MB of pixels is what deflate really reaches on a single colour: a
    # legitimate file, so the request accepts it without decoding; its memory is bounded by
    # the pixel limit like any other picture's.
    flat = images.flat_png(7071, 7071)
    info = inspect_upload(io.BytesIO(flat), max_pixels=MAX_PIXELS)
    assert (info.width, info.height, info.frames) == (7071, 7071, 1)
    assert check_decodes(io.BytesIO(flat), max_pixels=MAX_PIXELS) == info


def test_limits_must_be_positive() -> None:
    for limits in ({"max_frames": 0}, {"max_total_pixels": 0}):
        with pytest.raises(ValueError, match="positive"):
            inspect_upload(io.BytesIO(images.picture("PNG")), max_pixels=MAX_PIXELS, **limits)

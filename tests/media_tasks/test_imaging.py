"""Behaviour of media_tasks.imaging as a user would notice it: what is accepted, what the
thumbnails look like, and what the analysis reports. Pure Pillow; no Django needed."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import re
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageFile, ImageStat, features

from media_tasks import imaging
from media_tasks.imaging import (
    DEFAULT_FORMATS,
    ImageRejected,
    Rendition,
    analyse,
    hamming,
    inspect_upload,
    make_renditions,
)
from tests.media_tasks import images
from tests.media_tasks.images import BLUE, GREEN, PILLOW_IMAGES, RED, WHITE

MAX_PIXELS = 50_000_000
SIZES = (1600, 800, 320)
HAS_AVIF = bool(features.check("avif"))
ALLOWED_TEXT = "JPEG, PNG, WebP, GIF" + (", AVIF" if HAS_AVIF else "")

Pixel = tuple[int, ...]


# ------------------------------------------------------------------------------ helpers


def real(name: str) -> bytes:
    return (PILLOW_IMAGES / name).read_bytes()


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


# ----------------------------------------------------------------------- inspect_upload


@pytest.mark.parametrize(
    ("name", "fmt", "mime", "size", "frames"),
    [
        ("hopper.jpg", "JPEG", "image/jpeg", (128, 128), 1),
        ("hopper.png", "PNG", "image/png", (128, 128), 1),
        ("hopper.gif", "GIF", "image/gif", (128, 128), 1),
        ("hopper.webp", "WEBP", "image/webp", (128, 128), 1),
        pytest.param(
            "avif-hopper.avif",
            "AVIF",
            "image/avif",
            (128, 128),
            1,
            marks=pytest.mark.skipif(not HAS_AVIF, reason="Pillow built without AVIF"),
        ),
        ("hopper_orientation_6.jpg", "JPEG", "image/jpeg", (128, 128), 1),
        ("pil_sample_cmyk.jpg", "JPEG", "image/jpeg", (100, 100), 1),
        ("apng-mode_16bit.png", "PNG", "image/apng", (128, 64), 3),
        ("iss634.gif", "GIF", "image/gif", (245, 245), 42),
        ("exif_gps.jpg", "JPEG", "image/jpeg", (8, 8), 1),
        ("icc_profile.png", "PNG", "image/png", (57, 57), 1),
        ("p_trns_single.png", "PNG", "image/png", (64, 64), 1),
        ("rgb_trns.png", "PNG", "image/png", (64, 64), 1),
    ],
)
def test_inspect_accepts_real_images(
    name: str, fmt: str, mime: str, size: tuple[int, int], frames: int
) -> None:
    info = inspect_upload(io.BytesIO(real(name)), max_pixels=MAX_PIXELS)
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
        pytest.param(real("truncated_jpeg.jpg"), "truncated or damaged image", id="trunc-jpg"),
        pytest.param(real("truncated_image.png"), "truncated or damaged image", id="trunc-png"),
        pytest.param(real("broken.png"), "truncated or damaged image", id="broken-png"),
        pytest.param(real("zero_width.gif"), "image has zero width or height", id="zero-width"),
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
    reason = rejection(action, real("decompression_bomb.gif"))
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
    for data in (real("truncated_jpeg.jpg"), real("hopper.jpg")):
        for action in (inspect, render, analysis):
            with contextlib.suppress(ImageRejected):
                action(io.BytesIO(data))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ---------------------------------------------------------------------- make_renditions


def test_renditions_are_webp_and_jpeg_per_size_largest_first() -> None:
    result = renditions(images.photo_like(640, 427), (100, 320))
    assert [r.name for r in result] == ["320-webp", "320-jpeg", "100-webp", "100-jpeg"]
    for rendition in result:
        img = reopen(rendition)
        assert img.format == rendition.format
        assert rendition.content_type == Image.MIME[rendition.format]
        assert img.size == (rendition.width, rendition.height)
        assert max(img.size) == rendition.size
    assert [(r.width, r.height) for r in result[::2]] == [(320, 214), (100, 67)]
    assert reopen(result[1]).info.get("progressive")


def test_portrait_renditions_fit_the_longest_side() -> None:
    portrait = images.save(images.photo_like_image(427, 640), "JPEG")
    assert [(r.width, r.height) for r in renditions(portrait, (320,))] == [(214, 320)] * 2


def test_small_images_are_never_upscaled_and_not_repeated() -> None:
    result = renditions(real("hopper.png"), (1600, 800, 320, 64))
    assert [(r.name, r.width, r.height) for r in result] == [
        ("1600-webp", 128, 128),
        ("1600-jpeg", 128, 128),
        ("64-webp", 64, 64),
        ("64-jpeg", 64, 64),
    ]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    result = renditions(images.oriented_jpeg(orientation), (150, 60))
    assert [(r.width, r.height) for r in result] == [(150, 100)] * 2 + [(60, 40)] * 2
    for rendition in result:
        img = reopen(rendition).convert("RGB")
        w, h = img.size
        assert near(img.getpixel((3, 3)), RED, 40), rendition.name
        for corner in ((w - 4, 3), (3, h - 4), (w - 4, h - 4)):
            assert near(img.getpixel(corner), WHITE, 40), (rendition.name, corner)


@pytest.mark.parametrize("orientation", range(2, 9))
def test_real_oriented_photos_come_out_upright(orientation: int) -> None:
    upright = one(real("hopper.jpg"), 128)
    turned = one(real(f"hopper_orientation_{orientation}.jpg"), 128)
    assert mean_difference(upright, turned) < 12
    as_stored = Image.open(io.BytesIO(real(f"hopper_orientation_{orientation}.jpg")))
    assert mean_difference(upright, as_stored) > 40


def test_no_metadata_survives_in_any_rendition() -> None:
    sources = {
        "gps_jpeg": images.gps_jpeg(),
        "exif_gps.jpg": real("exif_gps.jpg"),
        "pil_sample_cmyk.jpg": real("pil_sample_cmyk.jpg"),  # EXIF, XMP and Photoshop blocks
        "hopper.jpg": real("hopper.jpg"),  # a JPEG comment
        "icc_profile.png": real("icc_profile.png"),
        "swapped_icc": images.red_green_with_swapped_profile("JPEG"),
    }
    for label, data in sources.items():
        for rendition in renditions(data, (320, 64)):
            img = reopen(rendition)
            assert len(img.getexif()) == 0, (label, rendition.name)
            leaked = {"exif", "xmp", "icc_profile", "comment", "photoshop"} & set(img.info)
            assert not leaked, (label, rendition.name, leaked)
            assert b"Exif" not in rendition.data, (label, rendition.name)


def test_cmyk_jpeg_becomes_rgb_with_the_right_colours() -> None:
    img = one(images.cmyk_jpeg(), 120, "JPEG")
    assert img.mode == "RGB"
    assert near(img.getpixel((20, 40)), (0, 255, 255), 20)  # cyan
    assert near(img.getpixel((100, 40)), (255, 0, 255), 20)  # magenta


def test_real_cmyk_sample_looks_like_red_on_black() -> None:
    for fmt in ("WEBP", "JPEG"):
        img = one(real("pil_sample_cmyk.jpg"), 100, fmt)
        assert img.mode == "RGB"
        red, green, blue = ImageStat.Stat(img).mean
        assert red < 80  # mostly black background: an inverted CMYK would be mostly white
        assert red > 3 * green  # the lettering is red
        assert red > 3 * blue
        assert near(img.getpixel((50, 90)), (0, 0, 0), 30)


def test_16bit_greyscale_is_scaled_not_clipped() -> None:
    img = one(images.png16_gradient(), 256, "JPEG").convert("L")
    assert img.getpixel((2, 16)) < 15
    assert abs(img.getpixel((128, 16)) - 128) < 15
    assert img.getpixel((253, 16)) > 240


def test_16bit_animated_png_gives_its_first_frame_in_8_bit() -> None:
    for fmt in ("WEBP", "JPEG"):
        img = one(real("apng-mode_16bit.png"), 128, fmt)
        assert img.size == (128, 64)
        assert near(img.convert("RGBA").getpixel((64, 32)), (255, 0, 0, 255))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(images.palette_png_transparent(), id="generated-palette"),
        pytest.param(real("p_trns_single.png"), id="p_trns_single.png"),
        pytest.param(real("rgb_trns.png"), id="rgb_trns.png"),
    ],
)
def test_transparency_is_kept_in_webp_and_flattened_on_white_in_jpeg(data: bytes) -> None:
    webp = one(data, 64, "WEBP")
    assert webp.mode == "RGBA"
    assert webp.getchannel("A").getextrema() == (0, 255)
    jpeg = one(data, 64, "JPEG")
    assert jpeg.mode == "RGB"
    # A spot inside a transparent area (lone pixels get blurred by JPEG's colour subsampling).
    alpha = webp.getchannel("A")
    clear = next(
        (x, y)
        for y in range(4, 60)
        for x in range(4, 60)
        if alpha.crop((x - 4, y - 4, x + 5, y + 5)).getextrema() == (0, 0)
    )
    assert near(jpeg.getpixel(clear), WHITE, 16)


def test_generated_palette_png_keeps_its_opaque_square() -> None:
    webp = one(images.palette_png_transparent(), 64, "WEBP")
    assert webp.getpixel((1, 1))[3] == 0
    assert near(webp.getpixel((32, 32)), (*RED, 255), 16)


def test_animated_gif_uses_the_first_frame() -> None:
    for rendition in renditions(images.animated_gif(), (60,)):
        assert near(reopen(rendition).convert("RGB").getpixel((30, 20)), RED, 16)
    first = Image.open(io.BytesIO(real("iss634.gif"))).convert("RGB")
    img = one(real("iss634.gif"), 245)
    assert img.size == (245, 245)
    assert mean_difference(img, first) < 8


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_embedded_icc_profile_is_converted_to_srgb(fmt: str) -> None:
    # The profile says the stored "red" channel is really blue, so red must come out blue.
    for rendition in renditions(images.red_green_with_swapped_profile(fmt), (80,)):
        img = reopen(rendition).convert("RGB")
        assert near(img.getpixel((10, 20)), BLUE, 20), rendition.name
        assert near(img.getpixel((70, 20)), GREEN, 20), rendition.name
        assert "icc_profile" not in img.info


def test_real_srgb_profile_keeps_colours() -> None:
    source = Image.open(io.BytesIO(real("icc_profile.png"))).convert("RGB")
    img = one(real("icc_profile.png"), 57, "WEBP")
    assert img.info.get("icc_profile") is None
    assert mean_difference(img, source) < 6


def test_progress_rises_to_100() -> None:
    steps: list[tuple[int, str]] = []
    result = renditions(
        images.photo_like(640, 427), SIZES, on_step=lambda p, m: steps.append((p, m))
    )
    # 640 px wide: an original-size pair (labelled 1600) and a 320 pair; 800 would repeat it.
    assert [r.name for r in result] == ["1600-webp", "1600-jpeg", "320-webp", "320-jpeg"]
    percents = [p for p, _m in steps]
    assert len(steps) == 1 + len(result)
    assert percents == sorted(percents)
    assert percents[-1] == 100
    assert all(message for _p, message in steps)


def test_decode_errors_are_clear_when_validation_was_skipped() -> None:
    for data in (real("truncated_jpeg.jpg"), real("truncated_image.png"), images.truncated_jpeg()):
        reason = rejection(render, data)
        assert reason == "could not decode the image: the file is truncated or damaged"


def test_big_photo_is_shrunk_on_decode_and_split_resize_has_no_seam() -> None:
    photo = images.photo_like(2400, 1600)
    result = renditions(photo, (1600, 800, 320))
    assert [(r.width, r.height) for r in result[::2]] == [(1600, 1067), (800, 533), (320, 213)]
    # The parallel resize must match a plain single resize.
    source = images.photo_like_image(2400, 1600)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for size in ((1600, 1067), (320, 213)):
            split = imaging._resize(source, size, pool)
            single = source.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
            assert ImageChops.difference(split, single).getextrema() <= ((0, 1),) * 3


def test_invalid_sizes_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="positive"):
        renditions(real("hopper.jpg"), (0, 320))
    assert renditions(real("hopper.jpg"), ()) == []


# ------------------------------------------------------------------------------ analyse


def test_analysis_of_a_turned_photo_reports_upright_size() -> None:
    result = analyse(io.BytesIO(images.oriented_jpeg(6)), max_pixels=MAX_PIXELS)
    assert (result.format, result.mode, result.width, result.height) == ("JPEG", "RGB", 300, 200)
    assert result.exif.orientation == 6
    assert (result.animated, result.frames) == (False, 1)


def test_exif_summary_and_gps() -> None:
    result = analyse(io.BytesIO(images.gps_jpeg()), max_pixels=MAX_PIXELS)
    exif = result.exif
    assert (exif.make, exif.model, exif.lens) == ("Canon", "Canon EOS R5", "RF50mm F1.8 STM")
    assert exif.date_taken == "2024-05-17T14:03:22+02:00"
    assert exif.exposure_time == pytest.approx(1 / 250)
    assert (exif.f_number, exif.iso, exif.focal_length) == (2.8, 400, 50.0)
    assert exif.gps is not None
    assert exif.gps.lat == pytest.approx(51.501, abs=1e-6)
    assert exif.gps.lon == pytest.approx(-0.127, abs=1e-6)
    data = result.as_json()
    assert data["exif"]["gps"] == {"lat": exif.gps.lat, "lon": exif.gps.lon}
    assert result.as_json(include_gps=False)["exif"]["gps"] is None
    assert json.loads(json.dumps(data)) == data


def test_real_exif_sample_with_nonsense_gps() -> None:
    # exif_gps.jpg has a GPS block, but its only coordinate is a latitude of 4294967295
    # degrees and there is no longitude: no location is better than a wrong one.
    result = analyse(io.BytesIO(real("exif_gps.jpg")), max_pixels=MAX_PIXELS)
    assert (result.exif.make, result.exif.model) == ("Make", "XXX-XXX")
    assert result.exif.date_taken == "2099-09-29T10:10:10"
    assert result.exif.gps is None


def test_dominant_and_average_colour_of_a_red_image() -> None:
    result = analyse(io.BytesIO(images.solid(RED)), max_pixels=MAX_PIXELS)
    assert math.dist(hex_rgb(result.dominant_colours[0]), RED) < 10
    assert math.dist(hex_rgb(result.average_colour), RED) < 10


def test_dominant_colours_are_ordered_by_area() -> None:
    result = analyse(io.BytesIO(images.two_colours()), max_pixels=MAX_PIXELS)
    assert result.dominant_colours == ["#0000ff", "#ffff00"]


def test_dominant_colours_are_distinct() -> None:
    result = analyse(io.BytesIO(real("hopper.jpg")), max_pixels=MAX_PIXELS)
    assert 1 < len(result.dominant_colours) <= 5
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in result.dominant_colours)
    colours = [hex_rgb(c) for c in result.dominant_colours]
    assert all(math.dist(a, b) >= 20 for i, a in enumerate(colours) for b in colours[i + 1 :])


def test_phash_finds_resized_copies_and_tells_different_images_apart() -> None:
    def phash(data: bytes) -> str:
        return analyse(io.BytesIO(data), max_pixels=MAX_PIXELS).phash

    photo = images.photo_like(640, 427)
    resized = images.save(Image.open(io.BytesIO(photo)).resize((200, 133)), "JPEG", quality=70)
    assert re.fullmatch(r"[0-9a-f]{16}", phash(photo))
    assert hamming(phash(photo), phash(resized)) <= 6
    assert hamming(phash(photo), phash(images.stripes(640, 427))) >= 20
    assert hamming(phash(real("hopper.jpg")), phash(real("hopper.webp"))) <= 6
    assert hamming(phash(real("hopper.jpg")), phash(real("pil_sample_cmyk.jpg"))) >= 20
    # Orientation is applied before hashing, so a turned photo matches the upright one.
    assert hamming(phash(real("hopper.jpg")), phash(real("hopper_orientation_6.jpg"))) <= 6


def test_hamming() -> None:
    assert hamming("0" * 16, "0" * 16) == 0
    assert hamming("ffffffffffffffff", "0000000000000000") == 64
    assert hamming("000000000000000f", "0000000000000001") == 3
    with pytest.raises(ValueError, match="length"):
        hamming("ff", "fff")


@pytest.mark.parametrize(
    ("data", "alpha"),
    [
        pytest.param(images.photo_like(640, 427), False, id="photo"),
        pytest.param(images.palette_png_transparent(), True, id="transparent"),
        pytest.param(real("iss634.gif"), False, id="animated"),
    ],
)
def test_placeholder_is_a_tiny_webp_data_uri(data: bytes, alpha: bool) -> None:
    placeholder = analyse(io.BytesIO(data), max_pixels=MAX_PIXELS).placeholder
    prefix = "data:image/webp;base64,"
    assert placeholder.startswith(prefix)
    assert len(placeholder) <= 600
    img = Image.open(io.BytesIO(base64.b64decode(placeholder.removeprefix(prefix))))
    assert img.format == "WEBP"
    assert max(img.size) == 16
    assert ("A" in img.mode) is alpha


def test_analysis_of_special_inputs() -> None:
    gif = analyse(io.BytesIO(images.animated_gif()), max_pixels=MAX_PIXELS)
    assert (gif.format, gif.animated, gif.frames) == ("GIF", True, 3)
    assert math.dist(hex_rgb(gif.dominant_colours[0]), RED) < 10
    grey = analyse(io.BytesIO(images.png16_gradient()), max_pixels=MAX_PIXELS)
    assert grey.mode == "I;16"
    assert all(abs(v - 128) < 12 for v in hex_rgb(grey.average_colour))
    cmyk = analyse(io.BytesIO(real("pil_sample_cmyk.jpg")), max_pixels=MAX_PIXELS)
    assert cmyk.mode == "CMYK"
    assert math.dist(hex_rgb(cmyk.dominant_colours[0]), (0, 0, 0)) < 20


def test_progress_of_analysis() -> None:
    steps: list[int] = []
    analyse(
        io.BytesIO(real("hopper.jpg")), max_pixels=MAX_PIXELS, on_step=lambda p, m: steps.append(p)
    )
    assert steps == sorted(steps)
    assert steps[-1] == 100


# ------------------------------------------------------------- every shared real image

ACCEPTED = {
    "apng-mode_16bit.png",
    "avif-hopper.avif",
    "exif_gps.jpg",
    "hopper.gif",
    "hopper.jpg",
    "hopper.png",
    "hopper.webp",
    "icc_profile.png",
    "iss634.gif",
    "p_trns_single.png",
    "pil_sample_cmyk.jpg",
    "rgb_trns.png",
    *(f"hopper_orientation_{n}.jpg" for n in range(2, 9)),
}
REJECTED = {
    "broken.png": "truncated or damaged image",
    "decompression_bomb.gif": "megapixels, the limit is 50 megapixels",
    "truncated_image.png": "truncated or damaged image",
    "truncated_jpeg.jpg": "truncated or damaged image",
    "zero_width.gif": "image has zero width or height",
}
SHARED = sorted(path.name for path in PILLOW_IMAGES.iterdir() if path.suffix not in {".md", ".txt"})


def test_every_shared_image_has_an_expectation() -> None:
    assert set(SHARED) == ACCEPTED | set(REJECTED)


@pytest.mark.parametrize("name", SHARED)
def test_shared_image_end_to_end(name: str) -> None:
    if name.endswith(".avif") and not HAS_AVIF:
        pytest.skip("Pillow built without AVIF")
    with (PILLOW_IMAGES / name).open("rb") as fp:
        if name in REJECTED:
            with pytest.raises(ImageRejected) as caught:
                inspect_upload(fp, max_pixels=MAX_PIXELS)
            assert caught.value.reason.endswith(REJECTED[name])
            return
        info = inspect_upload(fp, max_pixels=MAX_PIXELS)
        result = make_renditions(fp, sizes=SIZES, max_pixels=MAX_PIXELS)
        summary = analyse(fp, max_pixels=MAX_PIXELS)
    assert [r.format for r in result] == ["WEBP", "JPEG"]
    for rendition in result:
        img = reopen(rendition)
        assert (img.width, img.height) == (info.width, info.height)  # none are turned by 90°
        assert len(img.getexif()) == 0
        assert img.info.get("icc_profile") is None
    assert (summary.width, summary.height, summary.format) == (info.width, info.height, info.format)

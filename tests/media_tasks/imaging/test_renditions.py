"""The thumbnails make_renditions makes: sizes, formats, colours, transparency, progress."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageChops, ImageStat

from media_tasks.imaging import pixels, rendition_names
from tests.media_tasks import images
from tests.media_tasks.images import RED, WHITE
from tests.media_tasks.imaging.helpers import (
    SIZES,
    mean_difference,
    near,
    one,
    rejection,
    render,
    renditions,
    reopen,
)


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
    result = renditions(images.picture("PNG"), (1600, 800, 320, 64))
    assert [(r.name, r.width, r.height) for r in result] == [
        ("1600-webp", 128, 128),
        ("1600-jpeg", 128, 128),
        ("64-webp", 64, 64),
        ("64-jpeg", 64, 64),
    ]


def test_cmyk_jpeg_becomes_rgb_with_the_right_colours() -> None:
    img = one(images.cmyk_jpeg(), 120, "JPEG")
    assert img.mode == "RGB"
    assert near(img.getpixel((20, 40)), (0, 255, 255), 20)  # cyan
    assert near(img.getpixel((100, 40)), (255, 0, 255), 20)  # magenta


def test_cmyk_print_file_looks_like_red_on_black() -> None:
    for fmt in ("WEBP", "JPEG"):
        img = one(images.cmyk_jpeg_with_metadata(), 100, fmt)
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
        img = one(images.apng_16bit(), 128, fmt)
        assert img.size == (128, 64)
        assert near(img.convert("RGBA").getpixel((64, 32)), (255, 0, 0, 255))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(images.palette_png_transparent(), id="generated-palette"),
        pytest.param(images.palette_png_one_transparent_colour(), id="palette-one-transparent"),
        pytest.param(images.rgb_png_transparent_colour(), id="rgb-colour-key"),
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
    first = Image.open(io.BytesIO(images.long_animated_gif())).convert("RGB")
    img = one(images.long_animated_gif(), 245)
    assert img.size == (245, 245)
    assert mean_difference(img, first) < 8


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
    for data in (images.jpeg_missing_its_end(), images.truncated_png(), images.truncated_jpeg()):
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
            split = pixels.resize(source, size, pool)
            single = source.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
            assert ImageChops.difference(split, single).getextrema() <= ((0, 1),) * 3


def test_split_resize_of_a_transparent_image_matches_a_single_resize() -> None:
    source = images.photo_like_image(2400, 1600).convert("RGBA")
    source.putalpha(images.photo_like_image(2400, 1600, seed=2).convert("L"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        for size in ((1600, 1067), (320, 213)):
            split = pixels.resize(source, size, pool)
            single = source.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
            assert split.mode == "RGBA"
            # Compared as seen (premultiplied): the colour of a nearly clear pixel is coarse.
            seen = ImageChops.difference(split.convert("RGBa"), single.convert("RGBa"))
            assert seen.getextrema() <= ((0, 2),) * 4


def test_invalid_sizes_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="positive"):
        renditions(images.picture("JPEG"), (0, 320))
    assert renditions(images.picture("JPEG"), ()) == []


def test_formats_per_size_in_their_order_avif_among_them_with_alpha_kept() -> None:
    result = renditions(
        images.palette_png_transparent(),
        (100, 50),
        formats={100: ["avif", "webp"], 50: ["jpeg"]},
    )
    assert [r.name for r in result] == ["100-avif", "100-webp", "50-jpeg"]
    avif = reopen(result[0])
    assert avif.format == "AVIF"
    assert result[0].content_type == "image/avif"
    # Transparency survives in AVIF (and WebP); the JPEG is flattened.
    assert avif.mode == "RGBA"
    alpha_low, _alpha_high = avif.getchannel("A").getextrema()
    assert isinstance(alpha_low, int)
    assert alpha_low < 10
    assert reopen(result[2]).mode == "RGB"
    assert not {"exif", "xmp", "icc_profile"} & set(avif.info)


def test_one_list_of_formats_serves_every_size_and_unknown_formats_are_refused() -> None:
    result = renditions(images.photo_like(640, 427), (320, 100), formats=["webp"])
    assert [r.name for r in result] == ["320-webp", "100-webp"]
    with pytest.raises(ValueError, match="formats for size 320"):
        renditions(images.photo_like(640, 427), (320,), formats=["gif"])
    with pytest.raises(ValueError, match="formats for size 100"):
        renditions(images.photo_like(640, 427), (320, 100), formats={320: ["webp"]})


@pytest.mark.parametrize("size", [(640, 427), (427, 640), (128, 128), (90, 30)])
def test_rendition_names_are_those_make_renditions_makes(size: tuple[int, int]) -> None:
    formats = {1600: ["WEBP", "JPEG"], 320: ["AVIF", "WEBP"], 100: ["WEBP"]}
    made = renditions(images.photo_like(*size), (1600, 320, 100), formats=formats)
    assert {r.name for r in made} == rendition_names(size, (1600, 320, 100), formats)

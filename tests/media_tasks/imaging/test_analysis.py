"""What analyse reports: colours, perceptual hash, placeholder, and progress."""

from __future__ import annotations

import base64
import io
import math
import re

import pytest
from PIL import Image

from media_tasks.imaging import analyse, hamming
from tests.media_tasks import images
from tests.media_tasks.images import RED
from tests.media_tasks.imaging.helpers import MAX_PIXELS, hex_rgb


def test_dominant_and_average_colour_of_a_red_image() -> None:
    result = analyse(io.BytesIO(images.solid(RED)), max_pixels=MAX_PIXELS)
    assert math.dist(hex_rgb(result.dominant_colours[0]), RED) < 10
    assert math.dist(hex_rgb(result.average_colour), RED) < 10


def test_dominant_colours_are_ordered_by_area() -> None:
    result = analyse(io.BytesIO(images.two_colours()), max_pixels=MAX_PIXELS)
    assert result.dominant_colours == ["#0000ff", "#ffff00"]


def test_dominant_colours_are_distinct() -> None:
    result = analyse(io.BytesIO(images.picture("JPEG")), max_pixels=MAX_PIXELS)
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
    jpeg = phash(images.picture("JPEG"))
    assert hamming(jpeg, phash(images.picture("WEBP"))) <= 6
    assert hamming(jpeg, phash(images.cmyk_jpeg_with_metadata())) >= 20
    # Orientation is applied before hashing, so a turned photo matches the upright one.
    assert hamming(jpeg, phash(images.oriented_photo(6))) <= 6


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
        pytest.param(images.long_animated_gif(), False, id="animated"),
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
    cmyk = analyse(io.BytesIO(images.cmyk_jpeg_with_metadata()), max_pixels=MAX_PIXELS)
    assert cmyk.mode == "CMYK"
    assert math.dist(hex_rgb(cmyk.dominant_colours[0]), (0, 0, 0)) < 20


def test_progress_of_analysis() -> None:
    steps: list[int] = []
    analyse(
        io.BytesIO(images.picture("JPEG")),
        max_pixels=MAX_PIXELS,
        on_step=lambda p, m: steps.append(p),
    )
    assert steps == sorted(steps)
    assert steps[-1] == 100

"""The block walk behind inspect_upload: frames counted as Pillow counts them, and a budget
that refuses files made of countless tiny blocks before Pillow's own parsing walks them."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image

from media_tasks.imaging import check_decodes, inspect_upload
from tests.media_tasks import images
from tests.media_tasks.imaging.helpers import MAX_PIXELS, inspect, rejection


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: images.picture("GIF"), id="gif"),
        pytest.param(images.animated_gif, id="gif-3"),
        pytest.param(images.long_animated_gif, id="gif-42"),
        pytest.param(images.gif_with_a_damaged_frame, id="gif-damaged-frame"),
        pytest.param(lambda: images.picture("PNG"), id="png"),
        pytest.param(images.apng_16bit, id="apng-default-image"),
        pytest.param(lambda: images.picture("WEBP"), id="webp"),
        pytest.param(lambda: images.animated_webp(4), id="webp-4"),
        pytest.param(images.progressive_jpeg, id="jpeg"),
    ],
)
def test_frames_are_counted_as_pillow_counts_them(make: Callable[[], bytes]) -> None:
    data = make()
    frames = getattr(Image.open(io.BytesIO(data)), "n_frames", 1)
    assert inspect_upload(io.BytesIO(data), max_pixels=MAX_PIXELS).frames == frames


def test_the_extra_pictures_of_an_mpo_are_not_frames() -> None:
    assert Image.open(io.BytesIO(images.mpo())).n_frames == 2  # the preview picture
    assert inspect_upload(io.BytesIO(images.mpo()), max_pixels=MAX_PIXELS).frames == 1


def test_a_gif_cut_inside_a_trailing_extension_keeps_its_frames() -> None:
    # Pillow stops at an extension cut short and keeps every frame before it; so does the walk.
    cut = images.animated_gif()[:-1] + b"!\xfe\x05ab"
    assert Image.open(io.BytesIO(cut)).n_frames == 3
    assert check_decodes(io.BytesIO(cut), max_pixels=MAX_PIXELS).frames == 3


@pytest.mark.parametrize(
    ("fmt", "count"),
    [("GIF", 100_000), ("PNG", 50_000), ("JPEG", 50_000)],
)
def test_countless_tiny_blocks_are_refused(fmt: str, count: int) -> None:
    # Each empty block costs a few bytes to send and microseconds of Python to walk.
    assert rejection(inspect, images.many_tiny_blocks(fmt, count)) == (
        "image is made of too many small blocks to check"
    )


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "JPEG"])
def test_a_small_file_has_room_for_some_small_blocks(fmt: str) -> None:
    info = inspect_upload(io.BytesIO(images.many_tiny_blocks(fmt, 1000)), max_pixels=MAX_PIXELS)
    assert info.format == fmt

"""An extra check on real files that nobody here made: Pillow's own test images, end to end.

They are not part of the repository (every other test makes its inputs itself). The folder is
looked for beside the repository, at ../shared/testdata/pillow-images, or where
PILLOW_IMAGES_DIR points. Without it the module is skipped with one line in the summary; a
PILLOW_IMAGES_DIR that points nowhere is an error, since someone asked for the check.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from media_tasks.imaging import (
    ImageRejected,
    analyse,
    check_decodes,
    inspect_upload,
    make_renditions,
)
from tests.media_tasks.imaging.helpers import (
    HAS_AVIF,
    MAX_PIXELS,
    SIZES,
    mean_difference,
    near,
    one,
    reopen,
)

REPOSITORY = Path(__file__).resolve().parents[3]
BESIDE_THE_REPOSITORY = "../shared/testdata/pillow-images"


def shared_images() -> Path | None:
    """The folder of shared images, or None when it is not there (and nobody asked for it)."""
    configured = os.environ.get("PILLOW_IMAGES_DIR")
    if configured:
        folder = Path(configured)
        if not folder.is_dir():
            raise pytest.UsageError(f"PILLOW_IMAGES_DIR={configured!r} is not a folder")
        return folder
    folder = REPOSITORY / BESIDE_THE_REPOSITORY
    return folder if folder.is_dir() else None


FOLDER = shared_images()
if FOLDER is None:
    pytest.skip(
        f"{BESIDE_THE_REPOSITORY} not found: the extra real-image check did not run "
        "(set PILLOW_IMAGES_DIR to run it)",
        allow_module_level=True,
    )
PILLOW_IMAGES: Path = FOLDER

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
# Refused in the upload request, from headers and block structure.
REJECTED = {
    "broken.png": "truncated or damaged image",
    "decompression_bomb.gif": "megapixels, the limit is 50 megapixels",
    "truncated_image.png": "truncated or damaged image",
    "zero_width.gif": "image has zero width or height",
}
# Whole in its blocks, so accepted by the request; refused by the worker's full decode.
FAILS_TO_DECODE = {"truncated_jpeg.jpg": "truncated or damaged image"}
SHARED = sorted(path.name for path in PILLOW_IMAGES.iterdir() if path.suffix not in {".md", ".txt"})


def real(name: str) -> bytes:
    return (PILLOW_IMAGES / name).read_bytes()


def test_every_shared_image_has_an_expectation() -> None:
    assert set(SHARED) == ACCEPTED | set(REJECTED) | set(FAILS_TO_DECODE)


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
        if name in FAILS_TO_DECODE:
            with pytest.raises(ImageRejected) as caught:
                check_decodes(fp, max_pixels=MAX_PIXELS)
            assert caught.value.reason == FAILS_TO_DECODE[name]
            return
        assert check_decodes(fp, max_pixels=MAX_PIXELS) == info
        result = make_renditions(fp, sizes=SIZES, max_pixels=MAX_PIXELS)
        summary = analyse(fp, max_pixels=MAX_PIXELS)
    assert [r.format for r in result] == ["WEBP", "JPEG"]
    for rendition in result:
        img = reopen(rendition)
        assert (img.width, img.height) == (info.width, info.height)  # none are turned by 90°
        assert len(img.getexif()) == 0
        assert img.info.get("icc_profile") is None
    assert (summary.width, summary.height, summary.format) == (info.width, info.height, info.format)


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
def test_inspect_reads_real_images(
    name: str, fmt: str, mime: str, size: tuple[int, int], frames: int
) -> None:
    info = inspect_upload(io.BytesIO(real(name)), max_pixels=MAX_PIXELS)
    assert (info.format, info.mime_type, (info.width, info.height), info.frames) == (
        fmt,
        mime,
        size,
        frames,
    )


@pytest.mark.parametrize("orientation", range(2, 9))
def test_real_oriented_photos_come_out_upright(orientation: int) -> None:
    upright = one(real("hopper.jpg"), 128)
    turned = one(real(f"hopper_orientation_{orientation}.jpg"), 128)
    assert mean_difference(upright, turned) < 12
    as_stored = Image.open(io.BytesIO(real(f"hopper_orientation_{orientation}.jpg")))
    assert mean_difference(upright, as_stored) > 40


def test_real_cmyk_sample_looks_like_red_on_black() -> None:
    for fmt in ("WEBP", "JPEG"):
        img = one(real("pil_sample_cmyk.jpg"), 100, fmt)
        assert img.mode == "RGB"
        red, green, blue = ImageStat.Stat(img).mean
        assert red < 80  # mostly black background: an inverted CMYK would be mostly white
        assert red > 3 * green  # the lettering is red
        assert red > 3 * blue
        assert near(img.getpixel((50, 90)), (0, 0, 0), 30)


def test_real_exif_sample_with_nonsense_gps() -> None:
    # exif_gps.jpg has a GPS block, but its only coordinate is a latitude of 4294967295
    # degrees and there is no longitude: no location is better than a wrong one.
    result = analyse(io.BytesIO(real("exif_gps.jpg")), max_pixels=MAX_PIXELS)
    assert (result.exif.make, result.exif.model) == ("Make", "XXX-XXX")
    assert result.exif.date_taken == "2099-09-29T10:10:10"
    assert result.exif.gps is None


def test_real_srgb_profile_keeps_colours() -> None:
    source = Image.open(io.BytesIO(real("icc_profile.png"))).convert("RGB")
    img = one(real("icc_profile.png"), 57, "WEBP")
    assert img.info.get("icc_profile") is None
    assert mean_difference(img, source) < 6


def test_real_animated_gif_uses_the_first_frame() -> None:
    first = Image.open(io.BytesIO(real("iss634.gif"))).convert("RGB")
    img = one(real("iss634.gif"), 245)
    assert img.size == (245, 245)
    assert mean_difference(img, first) < 8

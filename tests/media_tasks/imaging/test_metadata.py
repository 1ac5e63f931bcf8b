"""What images say about themselves: orientation applied, ICC converted, EXIF and GPS read,
and none of it left in a thumbnail."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from media_tasks.imaging import analyse
from tests.media_tasks import images
from tests.media_tasks.images import BLUE, GREEN, RED, WHITE
from tests.media_tasks.imaging.helpers import (
    MAX_PIXELS,
    mean_difference,
    near,
    one,
    renditions,
    reopen,
)


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
def test_oriented_photos_come_out_upright(orientation: int) -> None:
    upright = one(images.picture("JPEG"), 128)
    turned = one(images.oriented_photo(orientation), 128)
    assert mean_difference(upright, turned) < 12
    as_stored = Image.open(io.BytesIO(images.oriented_photo(orientation)))
    assert mean_difference(upright, as_stored) > 40


def test_no_metadata_survives_in_any_rendition() -> None:
    sources = {
        "gps_jpeg": images.gps_jpeg(),
        "nonsense_gps": images.nonsense_gps_jpeg(),
        "cmyk_metadata": images.cmyk_jpeg_with_metadata(),  # EXIF, XMP and Photoshop blocks
        "commented": images.commented_jpeg(),  # a JPEG comment
        "srgb_icc": images.png_with_srgb_profile(),
        "swapped_icc": images.red_green_with_swapped_profile("JPEG"),
    }
    for label, data in sources.items():
        for rendition in renditions(data, (320, 64)):
            img = reopen(rendition)
            assert len(img.getexif()) == 0, (label, rendition.name)
            leaked = {"exif", "xmp", "icc_profile", "comment", "photoshop"} & set(img.info)
            assert not leaked, (label, rendition.name, leaked)
            assert b"Exif" not in rendition.data, (label, rendition.name)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_embedded_icc_profile_is_converted_to_srgb(fmt: str) -> None:
    # The profile says the stored "red" channel is really blue, so red must come out blue.
    for rendition in renditions(images.red_green_with_swapped_profile(fmt), (80,)):
        img = reopen(rendition).convert("RGB")
        assert near(img.getpixel((10, 20)), BLUE, 20), rendition.name
        assert near(img.getpixel((70, 20)), GREEN, 20), rendition.name
        assert "icc_profile" not in img.info


def test_srgb_profile_keeps_colours() -> None:
    source = Image.open(io.BytesIO(images.png_with_srgb_profile())).convert("RGB")
    img = one(images.png_with_srgb_profile(), 57, "WEBP")
    assert img.info.get("icc_profile") is None
    assert mean_difference(img, source) < 6


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


def test_exif_with_nonsense_gps() -> None:
    # A GPS block whose only coordinate is a latitude of 4294967295 degrees, with no
    # longitude: no location is better than a wrong one.
    result = analyse(io.BytesIO(images.nonsense_gps_jpeg()), max_pixels=MAX_PIXELS)
    assert (result.exif.make, result.exif.model) == ("Make", "XXX-XXX")
    assert result.exif.date_taken == "2099-09-29T10:10:10"
    assert result.exif.gps is None

"""Every shared real-world image, end to end: refused with its reason, or thumbnailed and
analysed."""

from __future__ import annotations

import pytest

from media_tasks.imaging import ImageRejected, analyse, inspect_upload, make_renditions
from tests.media_tasks.images import PILLOW_IMAGES
from tests.media_tasks.imaging.helpers import HAS_AVIF, MAX_PIXELS, SIZES, reopen

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

"""ThumbHash (media_tasks/imaging/thumbhash.py) against the reference coder itself: the
vendored thumbhash.js (evanw/thumbhash), run by Node on the same pixels, must give the same
bytes; and what the page decodes keeps the image's alpha and aspect ratio."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from media_tasks.imaging import thumbhash
from tests.media_tasks import images

REFERENCE = Path(__file__).resolve().parents[3] / "static/media_tasks/vendor/thumbhash/thumbhash.js"
NODE = shutil.which("node")

# Reads [[w, h, [rgba...]], ...] on stdin; writes each hash (base64) and the reference's
# decoding of it: its size, and whether any decoded pixel is transparent.
SCRIPT = """
import { rgbaToThumbHash, thumbHashToRGBA, thumbHashToApproximateAspectRatio } from %s;
let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = JSON.parse(input).map(([w, h, rgba]) => {
  const hash = rgbaToThumbHash(w, h, Uint8Array.from(rgba));
  const decoded = thumbHashToRGBA(hash);
  let transparent = false;
  for (let i = 3; i < decoded.rgba.length; i += 4) if (decoded.rgba[i] < 250) transparent = true;
  return {hash: Buffer.from(hash).toString("base64"), w: decoded.w, h: decoded.h, transparent,
          ratio: thumbHashToApproximateAspectRatio(hash)};
});
console.log(JSON.stringify(out));
"""


def samples() -> dict[str, Image.Image]:
    transparent = Image.new("RGBA", (40, 20), (255, 0, 0, 0))
    transparent.paste((20, 120, 250, 255), (10, 5, 30, 15))
    return {
        "photo, landscape": images.photo_like_image(96, 64),
        "photo, portrait": images.photo_like_image(30, 90, seed=3),
        "gradient": images.gradient_image(100, 100),
        "transparent around a square": transparent,
        "one pixel": Image.new("RGBA", (1, 1), (10, 200, 30, 255)),
        "half transparent": Image.new("RGBA", (17, 9), (200, 100, 50, 128)),
    }


def reference(pictures: dict[str, Image.Image]) -> list[dict[str, object]]:
    if NODE is None:
        pytest.fail("node is needed to run the reference ThumbHash coder")
    payload = [
        [img.width, img.height, list(img.convert("RGBA").tobytes())] for img in pictures.values()
    ]
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", SCRIPT % json.dumps(REFERENCE.as_uri())],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout)


# Images symmetric enough that some of their coefficients are zero in exact arithmetic: the
# factor then sits on a rounding tie, which the last bit of cos() (V8's or the C library's)
# decides. Elsewhere the bytes are the same.
TIES = {"gradient", "one pixel", "half transparent", "transparent around a square"}


def nibbles(digest: bytes) -> list[int]:
    return [half for byte in digest for half in (byte & 15, byte >> 4)]


def test_the_hashes_are_the_reference_coders_byte_for_byte() -> None:
    pictures = samples()
    expected = reference(pictures)
    for (name, img), theirs in zip(pictures.items(), expected, strict=True):
        rgba = img.convert("RGBA")
        ours = thumbhash.rgba_to_thumbhash(rgba.width, rgba.height, rgba.tobytes())
        assert thumbhash.approximate_aspect_ratio(ours) == pytest.approx(theirs["ratio"]), name
        if name not in TIES:
            assert base64.b64encode(ours).decode() == theirs["hash"], name
            continue
        reference_bytes = base64.b64decode(str(theirs["hash"]))
        assert len(ours) == len(reference_bytes), name
        header = 6 if ours[2] & 0x80 else 5
        assert ours[:header] == reference_bytes[:header], name
        apart = [
            abs(a - b)
            for a, b in zip(nibbles(ours[header:]), nibbles(reference_bytes[header:]), strict=True)
        ]
        assert max(apart) <= 1, name
        assert sum(apart) <= 3, name


def test_alpha_and_aspect_ratio_survive_in_what_the_page_decodes() -> None:
    pictures = samples()
    decoded = dict(zip(pictures, reference(pictures), strict=True))
    assert decoded["transparent around a square"]["transparent"] is True
    assert decoded["photo, landscape"]["transparent"] is False
    # Landscape stays wider than tall, portrait taller than wide, in the decoded placeholder.
    assert decoded["photo, landscape"]["w"] > decoded["photo, landscape"]["h"]
    assert decoded["photo, portrait"]["w"] < decoded["photo, portrait"]["h"]
    assert decoded["gradient"]["w"] == decoded["gradient"]["h"]


def test_a_large_image_is_reduced_first_and_too_large_input_is_refused() -> None:
    big = images.photo_like_image(3000, 1000)
    encoded = base64.b64decode(thumbhash.thumbhash_of(big))
    assert 5 <= len(encoded) <= 25
    assert thumbhash.approximate_aspect_ratio(encoded) > 1
    with pytest.raises(ValueError, match="doesn't fit in 100x100"):
        thumbhash.rgba_to_thumbhash(101, 10, bytes(101 * 10 * 4))

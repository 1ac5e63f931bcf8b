"""ThumbHash (https://evanw.github.io/thumbhash/): a placeholder of about 25 bytes that keeps
an image's colours, alpha and aspect ratio; the page decodes it before the picture loads.

A line-by-line port of the reference encoder (evanw/thumbhash, thumbhash.js, MIT), its
rounding included (JavaScript's Math.round, not Python's), so that it writes the very bytes
the reference does: tests/media_tasks/imaging/test_thumbhash.py checks that against the
reference itself, vendored for the page (static/media_tasks/vendor/thumbhash.js).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

from PIL import Image

from media_tasks.imaging import pixels

# The reference takes at most 100x100 pixels; it keeps only the lowest frequencies, so a
# smaller input changes little and costs a tenth (the encoder is pure Python).
ENCODE_SIZE = 32


def _round(value: float) -> int:
    """JavaScript's Math.round: halves go up."""
    return math.floor(value + 0.5)


def rgba_to_thumbhash(width: int, height: int, rgba: Sequence[int]) -> bytes:
    """The ThumbHash of `width` x `height` RGBA pixels (not premultiplied), row by row."""
    if width > 100 or height > 100:
        raise ValueError(f"{width}x{height} doesn't fit in 100x100")
    count = width * height
    avg_r = avg_g = avg_b = avg_a = 0.0
    for j in range(0, count * 4, 4):
        alpha = rgba[j + 3] / 255
        avg_r += alpha / 255 * rgba[j]
        avg_g += alpha / 255 * rgba[j + 1]
        avg_b += alpha / 255 * rgba[j + 2]
        avg_a += alpha
    if avg_a:
        avg_r /= avg_a
        avg_g /= avg_a
        avg_b /= avg_a

    has_alpha = avg_a < count
    l_limit = 5 if has_alpha else 7  # fewer luminance bits if there is alpha
    lx = max(1, _round(l_limit * width / max(width, height)))
    ly = max(1, _round(l_limit * height / max(width, height)))
    lum: list[float] = []
    yb: list[float] = []  # yellow - blue
    rg: list[float] = []  # red - green
    alp: list[float] = []
    for j in range(0, count * 4, 4):
        # Composite atop the average colour.
        alpha = rgba[j + 3] / 255
        r = avg_r * (1 - alpha) + alpha / 255 * rgba[j]
        g = avg_g * (1 - alpha) + alpha / 255 * rgba[j + 1]
        b = avg_b * (1 - alpha) + alpha / 255 * rgba[j + 2]
        lum.append((r + g + b) / 3)
        yb.append((r + g) / 2 - b)
        rg.append(r - g)
        alp.append(alpha)

    def encode_channel(channel: list[float], nx: int, ny: int) -> tuple[float, list[float], float]:
        dc, ac, scale = 0.0, [], 0.0
        for cy in range(ny):
            fys = [math.cos(math.pi / height * cy * (y + 0.5)) for y in range(height)]
            cx = 0
            while cx * ny < nx * (ny - cy):
                fx = [math.cos(math.pi / width * cx * (x + 0.5)) for x in range(width)]
                f = 0.0
                for y in range(height):
                    fy = fys[y]
                    row = y * width
                    for x in range(width):
                        f += channel[x + row] * fx[x] * fy
                f /= count
                if cx or cy:
                    ac.append(f)
                    scale = max(scale, abs(f))
                else:
                    dc = f
                cx += 1
        if scale:
            ac = [0.5 + 0.5 / scale * value for value in ac]
        return dc, ac, scale

    l_dc, l_ac, l_scale = encode_channel(lum, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = encode_channel(yb, 3, 3)
    q_dc, q_ac, q_scale = encode_channel(rg, 3, 3)
    a_dc, a_ac, a_scale = encode_channel(alp, 5, 5) if has_alpha else (0.0, [], 0.0)

    landscape = width > height
    header24 = (
        _round(63 * l_dc)
        | (_round(31.5 + 31.5 * p_dc) << 6)
        | (_round(31.5 + 31.5 * q_dc) << 12)
        | (_round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if landscape else lx)
        | (_round(63 * p_scale) << 3)
        | (_round(63 * q_scale) << 9)
        | (int(landscape) << 15)
    )
    digest = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    if has_alpha:
        digest.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
    start = len(digest)
    factors = [*l_ac, *p_ac, *q_ac, *(a_ac if has_alpha else [])]
    digest.extend([0] * ((len(factors) + 1) // 2))
    for index, factor in enumerate(factors):
        digest[start + (index >> 1)] |= _round(15 * factor) << ((index & 1) << 2)
    return bytes(digest)


def approximate_aspect_ratio(digest: bytes) -> float:
    """Width over height as the hash keeps it (the reference's own approximation)."""
    header = digest[3]
    has_alpha = digest[2] & 0x80
    landscape = digest[4] & 0x80
    lx = (5 if has_alpha else 7) if landscape else header & 7
    ly = header & 7 if landscape else (5 if has_alpha else 7)
    return lx / ly


def thumbhash_of(img: Image.Image) -> str:
    """The image's ThumbHash, base64 (as the reference's demo and most clients pass it)."""
    small = pixels.resize(img.convert("RGBA"), pixels.fit(img.size, ENCODE_SIZE))
    digest = rgba_to_thumbhash(small.width, small.height, small.tobytes())
    return base64.b64encode(digest).decode("ascii")

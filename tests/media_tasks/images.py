"""Generated test images (as bytes) for media_tasks.imaging, plus the shared real-world files."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, TiffImagePlugin

# The shared folder is a sibling of the repository root, not part of the repository.
PILLOW_IMAGES = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "pillow-images"

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)

# Upright test picture: 300x200 with a red block in the top-left corner.
UPRIGHT_SIZE = (300, 200)
RED_BLOCK = (0, 0, 100, 60)

# What exif_transpose applies per orientation; the stored image needs the inverse.
_INVERSE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def save(img: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **params)
    return buffer.getvalue()


def upright_picture() -> Image.Image:
    img = Image.new("RGB", UPRIGHT_SIZE, WHITE)
    ImageDraw.Draw(img).rectangle((0, 0, RED_BLOCK[2] - 1, RED_BLOCK[3] - 1), fill=RED)
    return img


def oriented_jpeg(orientation: int) -> bytes:
    """The upright picture stored turned, with the EXIF orientation that turns it back."""
    img = upright_picture()
    method = _INVERSE[orientation]
    stored = img.transpose(method) if method is not None else img
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(stored, "JPEG", quality=95, exif=exif)


def photo_like(width: int, height: int, *, seed: int = 1, quality: int = 90) -> bytes:
    """A JPEG with gradients, shapes and noise: compresses and decodes like a real photo."""
    return save(photo_like_image(width, height, seed=seed), "JPEG", quality=quality)


def photo_like_image(width: int, height: int, *, seed: int = 1) -> Image.Image:
    vertical = Image.linear_gradient("L")
    horizontal = vertical.transpose(Image.Transpose.ROTATE_90).resize((width, height))
    vertical = vertical.resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    img = Image.merge("RGB", (horizontal, vertical, radial))
    draw = ImageDraw.Draw(img)
    for i in range(12):
        x = (seed * 97 + i * 211) % width
        y = (seed * 53 + i * 137) % height
        r = max(4, min(width, height) // (4 + i % 5))
        colour = ((i * 70 + seed * 30) % 256, (i * 150) % 256, (255 - i * 40) % 256)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    return ImageChops.add(img, noise, scale=1.0, offset=-128)


def stripes(width: int, height: int) -> bytes:
    """Thin black and white vertical stripes: structurally unlike photo_like."""
    img = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(img)
    for x in range(0, width, 8):
        draw.rectangle((x, 0, x + 3, height), fill=(0, 0, 0))
    return save(img, "PNG")


def solid(
    colour: tuple[int, int, int], size: tuple[int, int] = (64, 48), fmt: str = "JPEG"
) -> bytes:
    return save(Image.new("RGB", size, colour), fmt)


def two_colours() -> bytes:
    """Three quarters blue, one quarter yellow."""
    img = Image.new("RGB", (80, 80), BLUE)
    ImageDraw.Draw(img).rectangle((0, 0, 79, 19), fill=(255, 255, 0))
    return save(img, "PNG")


def cmyk_jpeg() -> bytes:
    """Left half pure cyan, right half pure magenta, as CMYK without a profile."""
    img = Image.new("CMYK", (120, 80), (255, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((60, 0, 119, 79), fill=(0, 255, 0, 0))
    return save(img, "JPEG", quality=95)


def png16_gradient() -> bytes:
    """A 16-bit greyscale (I;16) PNG from black on the left to white on the right."""
    width, height = 256, 32
    row = struct.pack(f"<{width}H", *(x * 257 for x in range(width)))
    img = Image.frombytes("I;16", (width, height), row * height)
    return save(img, "PNG")


def palette_png_transparent() -> bytes:
    """A palette PNG: transparent everywhere except a red square in the middle."""
    img = Image.new("P", (64, 64), 0)
    img.putpalette([0, 255, 0, 255, 0, 0] + [0, 0, 0] * 254)
    ImageDraw.Draw(img).rectangle((16, 16, 47, 47), fill=1)
    return save(img, "PNG", transparency=0)


def animated_gif() -> bytes:
    """Three frames: red, green, blue."""
    frames = [Image.new("RGB", (60, 40), colour) for colour in (RED, GREEN, BLUE)]
    return save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def progressive_jpeg() -> bytes:
    return save(photo_like_image(320, 240), "JPEG", quality=85, progressive=True)


def truncated_jpeg() -> bytes:
    whole = photo_like(300, 200)
    return whole[: len(whole) // 2]


def mpo() -> bytes:
    """A multi-picture JPEG as many cameras write (the second picture is a preview)."""
    first = photo_like_image(200, 150)
    second = Image.new("RGB", (100, 75), RED)
    return save(first, "MPO", save_all=True, append_images=[second])


EMPTY = b""
TEXT = b"Dear diary,\nthis is not a picture at all.\n"
SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<rect width="10" height="10" fill="red"/></svg>\n'
)


def bmp() -> bytes:
    return save(Image.new("RGB", (8, 8), RED), "BMP")


def gif_claiming(width: int, height: int) -> bytes:
    """A tiny valid GIF whose header claims a huge canvas (a decompression bomb)."""
    data = bytearray(save(Image.new("P", (1, 1)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def huge_bilevel_png() -> bytes:
    """A genuine 10000x10000 (100 megapixel) black-and-white PNG that compresses to ~15 KB."""
    return save(Image.new("1", (10_000, 10_000), 1), "PNG")


def gps_jpeg() -> bytes:
    """A 320x240 photo with camera EXIF and a GPS position of 51.501 N, 0.127 W."""
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "Canon EOS R5"  # Model
    exif[0x0112] = 1  # Orientation
    details = exif.get_ifd(0x8769)
    details[0x9003] = "2024:05:17 14:03:22"  # DateTimeOriginal
    details[0x9011] = "+02:00"  # OffsetTimeOriginal
    details[0x829A] = TiffImagePlugin.IFDRational(1, 250)  # ExposureTime
    details[0x829D] = TiffImagePlugin.IFDRational(28, 10)  # FNumber
    details[0x8827] = 400  # ISOSpeedRatings
    details[0x920A] = TiffImagePlugin.IFDRational(50, 1)  # FocalLength
    details[0xA434] = "RF50mm F1.8 STM"  # LensModel
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 3.6)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 37.2)
    return save(photo_like_image(320, 240), "JPEG", quality=90, exif=exif)


# ---------------------------------------------------------------- a hand-made ICC profile

_D50 = (0.9642, 1.0, 0.8249)
# sRGB primaries adapted to D50, as in the standard sRGB profile.
SRGB_RED = (0.4361, 0.2225, 0.0139)
SRGB_GREEN = (0.3851, 0.7169, 0.0971)
SRGB_BLUE = (0.1431, 0.0606, 0.7141)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(values: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)


def matrix_profile(
    red: tuple[float, float, float],
    green: tuple[float, float, float],
    blue: tuple[float, float, float],
    *,
    gamma: float = 2.2,
    description: str = "test RGB",
) -> bytes:
    """A minimal ICC v2 RGB display profile (primaries matrix plus gamma curves)."""
    text = description.encode("ascii") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * (8 + 3 + 67)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [
        (b"desc", desc),
        (b"wtpt", _xyz(_D50)),
        (b"rXYZ", _xyz(red)),
        (b"gXYZ", _xyz(green)),
        (b"bXYZ", _xyz(blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text\0\0\0\0no copyright\0"),
    ]
    start = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, content in tags:
        body += b"\0" * (-(start + len(body)) % 4)
        table += signature + struct.pack(">II", start + len(body), len(content))
        body += content
    body += b"\0" * (-(start + len(body)) % 4)
    size = start + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + b"".join(_s15(v) for v in _D50)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def swapped_profile() -> bytes:
    """An RGB profile whose "red" channel is really sRGB blue and vice versa."""
    return matrix_profile(SRGB_BLUE, SRGB_GREEN, SRGB_RED, description="red-blue swapped")


def red_green_with_swapped_profile(fmt: str) -> bytes:
    """Stored left half (255,0,0) and right half (0,255,0), tagged with the swapped profile."""
    img = Image.new("RGB", (80, 40), RED)
    ImageDraw.Draw(img).rectangle((40, 0, 79, 39), fill=GREEN)
    return save(img, fmt, icc_profile=swapped_profile())

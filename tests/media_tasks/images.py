"""Test images for media_tasks, made here with Pillow (or by hand where Pillow cannot write
them), as bytes. Nothing is read from outside the repository."""

from __future__ import annotations

import io
import random
import struct
import zlib
from functools import cache

from PIL import Image, ImageChops, ImageCms, ImageDraw, TiffImagePlugin

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


def oriented_jpeg(orientation: int, img: Image.Image | None = None) -> bytes:
    """``img`` (by default the upright picture) stored turned, with the EXIF orientation that
    turns it back, as cameras write it."""
    img = upright_picture() if img is None else img
    method = _INVERSE[orientation]
    stored = img.transpose(method) if method is not None else img
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(stored, "JPEG", quality=95, exif=exif)


def photo_like(width: int, height: int, *, seed: int = 1, quality: int = 90) -> bytes:
    """A JPEG with gradients, shapes and noise: compresses and decodes like a real photo."""
    return save(photo_like_image(width, height, seed=seed), "JPEG", quality=quality)


def photo_like_image(width: int, height: int, *, seed: int = 1) -> Image.Image:
    """Gradients, discs and grain (the same for the same seed)."""
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
    # Seeded grain (effect_noise cannot be seeded): uniform bytes, whose standard deviation
    # is 74 levels, narrowed to effect_noise's 24.
    grain = Image.frombytes("L", (width, height), random.Random(seed).randbytes(width * height))
    grain = grain.point(lambda value: round(128 + (value - 128) * 24 / 74))
    return ImageChops.add(img, grain.convert("RGB"), scale=1.0, offset=-128)


def gradient_image(width: int, height: int) -> Image.Image:
    """Red rising to the right, green rising downwards: smooth, with no edges at all."""
    return Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize((width, height)),
            Image.linear_gradient("L").resize((width, height)),
            Image.new("L", (width, height), 128),
        ),
    )


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


@cache
def picture(fmt: str) -> bytes:
    """An ordinary 128x128 picture (photo-like) in ``fmt``: JPEG, PNG, GIF, WEBP or AVIF."""
    return save(photo_like_image(128, 128), fmt)


@cache
def oriented_photo(orientation: int) -> bytes:
    """picture("JPEG")'s photo stored turned, with the EXIF orientation that turns it back."""
    return oriented_jpeg(orientation, photo_like_image(128, 128))


def commented_jpeg() -> bytes:
    """A JPEG with a comment (COM) segment, as Photoshop and many scanners write."""
    return save(photo_like_image(128, 128), "JPEG", comment=b"File written by an image editor")


def cmyk_jpeg_with_metadata() -> bytes:
    """A 100x100 CMYK JPEG as print software writes it: red lettering-like bars on black,
    with EXIF, XMP and a Photoshop (APP13, IPTC) block."""
    img = Image.new("CMYK", (100, 100), (0, 0, 0, 255))
    draw = ImageDraw.Draw(img)
    for top in (10, 30, 50):
        draw.rectangle((10, top, 89, top + 8), fill=(0, 255, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = 1  # Orientation
    exif[0x0131] = "Print Studio 7"  # Software
    xmp = (
        b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
        b'<?xpacket end="w"?>'
    )
    data = save(img, "JPEG", quality=95, exif=exif, xmp=xmp)
    iptc = b"\x1c\x02\x78\x00\x0bred on black"  # caption
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc + b"\x00"
    app13 = b"Photoshop 3.0\x00" + resource
    segment = b"\xff\xed" + struct.pack(">H", len(app13) + 2) + app13
    return data[:2] + segment + data[2:]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def apng_16bit() -> bytes:
    """A 128x64 16-bit RGBA animated PNG, written by hand (Pillow writes 8-bit only): a red
    default image for viewers without APNG, then a green and a blue animation frame."""
    width, height = 128, 64

    def image_data(rgb: tuple[int, int, int]) -> bytes:
        row = b"\x00" + struct.pack(">4H", *(257 * v for v in rgb), 65535) * width
        return zlib.compress(row * height)

    def frame_control(sequence: int) -> bytes:
        return struct.pack(">IIIIIHHBB", sequence, width, height, 0, 0, 10, 100, 0, 0)

    chunks = [
        png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)),
        png_chunk(b"acTL", struct.pack(">II", 2, 1)),
        png_chunk(b"IDAT", image_data(RED)),
        png_chunk(b"fcTL", frame_control(0)),
        png_chunk(b"fdAT", struct.pack(">I", 1) + image_data(GREEN)),
        png_chunk(b"fcTL", frame_control(2)),
        png_chunk(b"fdAT", struct.pack(">I", 3) + image_data(BLUE)),
        png_chunk(b"IEND", b""),
    ]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def palette_png_one_transparent_colour() -> bytes:
    """A 64x64 palette PNG of many colours, one of which (not the first) is transparent (tRNS):
    a disc of colours on a transparent background."""
    img = photo_like_image(64, 64).quantize(colors=200)
    clear = 164
    mask = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(mask).ellipse((16, 16, 47, 47), fill=0)
    img.paste(clear, mask=mask)
    palette = img.getpalette() or []
    palette[3 * clear : 3 * clear + 3] = [0, 255, 52]  # a colour used nowhere else
    img.putpalette(palette)
    return save(img, "PNG", transparency=clear)


def rgb_png_transparent_colour() -> bytes:
    """A 64x64 RGB PNG whose background colour is transparent by a tRNS colour key."""
    key = (0, 255, 52)
    img = Image.new("RGB", (64, 64), key)
    ImageDraw.Draw(img).ellipse((16, 16, 47, 47), fill=(200, 40, 60))
    return save(img, "PNG", transparency=key)


@cache
def long_animated_gif() -> bytes:
    """A 245x245 GIF of 42 frames: a white disc moving over a gradient, each frame opaque."""
    # One palette for every frame (quantising each frame anew is slow): 255 colours of the
    # gradient, and white for the disc.
    base = gradient_image(245, 245).quantize(colors=255)
    colours = (base.getpalette() or [])[: 3 * 255]
    base.putpalette([*colours, *[0] * (3 * 255 - len(colours)), 255, 255, 255])
    frames = []
    for index in range(42):
        frame = base.copy()
        left = 20 + index * 4
        ImageDraw.Draw(frame).ellipse((left, 90, left + 60, 150), fill=255)
        frames.append(frame)
    return save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)


def srgb_profile() -> bytes:
    """The sRGB ICC profile as LittleCMS builds it."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def png_with_srgb_profile() -> bytes:
    """A 57x57 RGBA photo-like PNG tagged with an sRGB ICC profile."""
    img = gradient_image(57, 57).convert("RGBA")
    return save(img, "PNG", icc_profile=srgb_profile())


def nonsense_gps_jpeg() -> bytes:
    """An 8x8 JPEG with camera EXIF whose GPS block holds a latitude of 4294967295 degrees
    and no longitude, as some firmware writes."""
    exif = Image.Exif()
    exif[0x010F] = "Make"
    exif[0x0110] = "XXX-XXX"
    exif.get_ifd(0x8769)[0x9003] = "2099:09:29 10:10:10"  # DateTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps[0] = b"\x00\x00\x00\x01"  # GPSVersionID
    gps[2] = TiffImagePlugin.IFDRational(4294967295, 1)  # GPSLatitude, one number only
    return save(Image.new("RGB", (8, 8), (24, 24, 24)), "JPEG", exif=exif)


def cut(data: bytes, keep: float) -> bytes:
    """The first ``keep`` (a fraction) of ``data``: a file whose upload or copy broke off."""
    return data[: int(len(data) * keep)]


def truncated_png() -> bytes:
    return cut(save(photo_like_image(200, 150), "PNG"), 2 / 3)


def jpeg_missing_its_end() -> bytes:
    """A JPEG with its last bytes of entropy-coded data (and the end marker) missing."""
    whole = photo_like(100, 100)
    return whole[:-20]


def broken_png() -> bytes:
    """A PNG signature followed by garbage."""
    return b"\x89PNG\r\n\x1a\n" + random.Random(7).randbytes(72)


def png_with_bad_checksum() -> bytes:
    """An intact PNG except for a wrong CRC on its image data chunk."""
    data = bytearray(save(photo_like_image(64, 48), "PNG"))
    idat = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[idat - 4 : idat])
    data[idat + 4 + length] ^= 0xFF
    return bytes(data)


def png_with_garbage_chunk() -> bytes:
    """A PNG with a chunk whose type is not letters (a corrupted chunk header) before the data."""
    data = save(photo_like_image(64, 48), "PNG")
    idat = data.index(b"IDAT") - 4
    return data[:idat] + png_chunk(b"\x00\x01\xfe\xff", b"garbage") + data[idat:]


def zero_width_gif() -> bytes:
    """A GIF, built by hand, whose screen and only image are 0 pixels wide and 32 high."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 0, 32, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    image = b"," + struct.pack("<HHHHB", 0, 0, 0, 32, 0) + b"\x02\x02\x4c\x01\x00"
    return screen + image + b";"


def decompression_bomb_gif() -> bytes:
    """A tiny GIF with a 32x32 screen whose one image claims 65535x65535 pixels."""
    data = bytearray(save(Image.new("P", (1, 1)), "GIF"))
    descriptor = data.index(b",")
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 65535, 65535)
    data[6:10] = struct.pack("<HH", 32, 32)
    return bytes(data)


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


# ------------------------------------------------ files that cost more than their bytes say


def _colour_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _after_sub_blocks(data: bytes, pos: int) -> int:
    while data[pos]:
        pos += data[pos] + 1
    return pos + 1


def _gif_parts(img: Image.Image) -> tuple[bytes, bytes]:
    """A one-frame GIF of ``img`` split into its header (screen, palette, extensions) and its
    image block (descriptor and data), so that the block can be repeated."""
    data = save(img, "GIF")
    pos = 13 + _colour_table(data[10])
    while data[pos : pos + 1] == b"!":
        pos = _after_sub_blocks(data, pos + 2)
    return data[:pos], data[pos:-1]


def gif_of_frames(count: int, frame: Image.Image | None = None) -> bytes:
    """A GIF of ``count`` copies of one frame (by default 1x1), made by repeating its image
    block: a million frames take 15 MB and no time to make."""
    header, block = _gif_parts(frame or Image.new("P", (1, 1)))
    return header + block * count + b";"


def gif_with_frames_on_a_big_canvas(count: int, canvas: tuple[int, int]) -> bytes:
    """``count`` frames of 1x1 pixel on a screen of ``canvas``: tiny frames, big canvas."""
    header, block = _gif_parts(Image.new("P", (1, 1)))
    return header[:6] + struct.pack("<HH", *canvas) + header[10:] + block * count + b";"


def gif_widening_its_canvas(offset: tuple[int, int]) -> bytes:
    """A 1x1 GIF whose second frame sits at ``offset``: Pillow widens the canvas to reach it."""
    header, block = _gif_parts(Image.new("P", (1, 1)))
    moved = block[:1] + struct.pack("<HH", *offset) + block[5:]
    return header + block + moved + b";"


def gif_with_a_damaged_frame() -> bytes:
    """animated_gif() with its second frame's compressed data replaced by 0xFF bytes: the block
    structure is intact, only decoding that frame fails."""
    data = bytearray(animated_gif())
    pos, frames = 13 + _colour_table(data[10]), 0
    while True:
        if data[pos] == 0x21:  # an extension
            pos = _after_sub_blocks(data, pos + 2)
            continue
        code_size = pos + 10 + _colour_table(data[pos + 9])  # after descriptor and palette
        frames += 1
        if frames == 2:
            length = data[code_size + 1]
            data[code_size + 2 : code_size + 2 + length] = b"\xff" * length
            return bytes(data)
        pos = _after_sub_blocks(data, code_size + 1)


def png_with_short_image_data() -> bytes:
    """A PNG whose chunks are all intact but whose compressed image data stops half way,
    as an encoder that crashed while writing might leave it."""
    img = photo_like_image(64, 48)
    rows = img.tobytes()
    raw = b"".join(b"\x00" + rows[192 * y : 192 * (y + 1)] for y in range(48))
    compressed = zlib.compress(raw)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 48, 8, 2, 0, 0, 0))
        + png_chunk(b"IDAT", compressed[: len(compressed) // 2])
        + png_chunk(b"IEND", b"")
    )


@cache
def flat_png(width: int, height: int) -> bytes:
    """A genuine single-colour RGBA PNG: 7071x7071 (50 megapixels) compresses to 190 KiB."""
    return save(Image.new("RGBA", (width, height)), "PNG")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header claiming ``width`` x ``height`` RGBA over 1 KB of image data: more than
    any deflate stream can expand to."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(bytes(1000)) + bytes(1000))
        + png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims ``width`` x ``height``."""
    data = bytearray(photo_like(64, 48))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def apng_declaring_frames(count: int) -> bytes:
    """apng_16bit() with its animation control chunk (acTL) declaring ``count`` frames."""
    data = apng_16bit()
    start = data.index(b"acTL") - 4
    end = start + 12 + 8
    return data[:start] + png_chunk(b"acTL", struct.pack(">II", count, 1)) + data[end:]


def animated_webp(count: int) -> bytes:
    frames = [Image.new("RGB", (40, 30), (40 * i % 256, 80, 160)) for i in range(count)]
    return save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50)


def many_tiny_blocks(fmt: str, count: int) -> bytes:
    """A valid tiny image padded with ``count`` empty blocks (GIF comment sub-blocks, PNG
    private chunks, JPEG APP15 segments): cheap to send, slow to walk."""
    if fmt == "GIF":
        header, block = _gif_parts(Image.new("P", (1, 1)))
        return header + b"!\xfe" + b"\x01a" * count + b"\x00" + block + b";"
    if fmt == "PNG":
        data = save(Image.new("RGB", (1, 1)), "PNG")
        idat = data.index(b"IDAT") - 4
        return data[:idat] + png_chunk(b"prIv", b"") * count + data[idat:]
    data = save(Image.new("RGB", (8, 8)), "JPEG")
    return data[:2] + b"\xff\xef\x00\x02" * count + data[2:]

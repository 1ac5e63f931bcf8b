"""The layout of a GIF, PNG, JPEG or WebP file, read block by block without decoding a pixel.

This is what the upload request can afford: frame count, frame sizes and data sizes come from
the blocks' headers. Pillow's own header parsing walks every block in Python and counts GIF
frames by walking all of them, so a file of millions of tiny blocks costs it seconds; this walk
runs first, has a budget of blocks, and stops at the frame limit.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import BinaryIO, Final

from media_tasks.imaging.errors import TOO_MANY_BLOCKS, ImageRejected, too_many_frames
from media_tasks.imaging.opening import sniff

# Legitimate encoders write GIF sub-blocks of 255 bytes, PNG chunks of kilobytes (8 KiB from
# libpng), a handful of JPEG segments and a RIFF chunk per WebP frame. The budget allows one
# block per 64 bytes (GIF) or per KiB, plus room for small files and for each frame's own
# headers: only files built to be slow run out. At the 25 MB upload limit the worst file
# that still fits costs about 0.2 s of CPU here and in Pillow's header parsing together.
_BYTES_PER_BLOCK: Final = {"GIF": 64, "PNG": 1024, "JPEG": 1024, "WEBP": 1024}
_BLOCKS_PER_FRAME: Final = 8
_SMALL_FILE_BLOCKS: Final = 1_000

# The most pixels a format can pack into one byte of compressed data; a file that claims
# more than its data can hold was cut off, or lies. Deflate (PNG) reaches 1032 decoded bytes
# per byte; GIF's LZW at most 4096 pixels per 12-bit code; Huffman-coded JPEG spends at least
# one bit on every 8x8 block. Arithmetic-coded JPEG, WebP and AVIF have no such bound.
_DEFLATE_RATIO: Final = 1032
_LZW_PIXELS_PER_BYTE: Final = 4096 * 8 // 12
_JPEG_PIXELS_PER_BYTE: Final = 64 * 8
_RATIO_SLACK: Final = 65_536

_WINDOW: Final = 65_536
SCANNED: Final = frozenset(_BYTES_PER_BLOCK)


@dataclass(frozen=True, slots=True)
class Layout:
    """What the blocks say: ``frames`` as Pillow counts them, the largest ``canvas`` any frame
    needs, ``decoded_pixels``: the canvas pixels Pillow fills to decode every frame (it
    composes each frame, however small, on the whole canvas), and ``incomplete``: a block runs
    past the end of the file, or the pixels claimed are more than the data could hold. Pillow
    reads the header of such a file and fails on its pixels, so the size facts come first."""

    frames: int
    canvas: tuple[int, int]
    decoded_pixels: int
    incomplete: bool = False


def scan(fp: BinaryIO, formats: tuple[str, ...], *, max_frames: int, damaged: str) -> Layout | None:
    """Walk the blocks of ``fp`` if it is an allowed format this module reads, else None.
    Raises ImageRejected for more blocks than the budget or more frames than ``max_frames``,
    and with ``damaged`` when the file has no header to read a layout from."""
    fp.seek(0)
    fmt = sniff(fp.read(32))
    if fmt not in SCANNED or fmt not in formats:
        return None
    data = _Bytes(fp)
    budget = _Budget(
        _SMALL_FILE_BLOCKS + _BLOCKS_PER_FRAME * max_frames + data.size // _BYTES_PER_BLOCK[fmt]
    )
    try:
        if fmt == "GIF":
            return _gif(data, budget, max_frames, damaged)
        if fmt == "PNG":
            return _png(data, budget, max_frames, damaged)
        if fmt == "JPEG":
            return _jpeg(data, budget, damaged)
        return _webp(data, budget, max_frames, damaged)
    finally:
        fp.seek(0)


class _Bytes:
    """Random access to ``fp`` through one window: a walk holds at most _WINDOW bytes."""

    def __init__(self, fp: BinaryIO) -> None:
        self.size = fp.seek(0, io.SEEK_END)
        self._fp = fp
        self.start = 0
        self.buffer = b""

    def read(self, pos: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``pos`` (fewer at the end of the file)."""
        if pos < self.start or pos + length > self.start + len(self.buffer):
            self._fill(pos, length)
        return self.buffer[pos - self.start : pos - self.start + length]

    def window(self, pos: int) -> int:
        """Make ``buffer`` hold the bytes from ``pos`` on; return pos's offset in it."""
        if not self.start <= pos < self.start + len(self.buffer):
            self._fill(pos, _WINDOW)
        return pos - self.start

    def _fill(self, pos: int, length: int) -> None:
        self._fp.seek(pos)
        self.buffer = self._fp.read(max(length, _WINDOW))
        self.start = pos


class _Budget:
    def __init__(self, blocks: int) -> None:
        self.left = blocks

    def spend(self, blocks: int) -> None:
        self.left -= blocks
        if self.left < 0:
            raise ImageRejected(TOO_MANY_BLOCKS)


def _lying(pixels: int, data_bytes: int, pixels_per_byte: int) -> bool:
    return pixels > pixels_per_byte * data_bytes + _RATIO_SLACK


# --------------------------------------------------------------------------------- GIF


def _gif(data: _Bytes, budget: _Budget, max_frames: int, damaged: str) -> Layout:
    """Walk extensions and image descriptors as Pillow does, skipping their data sub-blocks."""
    screen = data.read(0, 13)
    if len(screen) < 13:
        raise ImageRejected(damaged)
    width, height = struct.unpack_from("<HH", screen, 6)
    pos = 13 + _colour_table(screen[10])
    frames = decoded = 0
    incomplete = False
    while True:
        introducer = data.read(pos, 1)
        if not introducer or introducer == b";":
            break
        if introducer == b"!":
            skipped = _sub_blocks(data, pos + 2, budget)
            if skipped is None:
                break  # Pillow stops at an extension cut short, keeping the frames before it
            pos = skipped[0]
        elif introducer == b",":
            descriptor = data.read(pos + 1, 9)
            if len(descriptor) < 9:
                incomplete = True
                break
            left, top, frame_width, frame_height = struct.unpack_from("<4H", descriptor)
            frames += 1
            if frames > max_frames:
                raise ImageRejected(too_many_frames(max_frames))
            # Pillow widens the canvas to hold a frame that reaches beyond it.
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            decoded += width * height
            # The local colour table, then one byte of LZW code size before the data.
            skipped = _sub_blocks(data, pos + 10 + _colour_table(descriptor[8]) + 1, budget)
            if skipped is None:
                incomplete = True
                break
            pos, data_bytes = skipped
            incomplete |= _lying(frame_width * frame_height, data_bytes, _LZW_PIXELS_PER_BYTE)
        else:
            pos += 1  # Pillow skips stray bytes between blocks one at a time
            budget.spend(1)
    return Layout(frames, (width, height), decoded, incomplete)


def _colour_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _sub_blocks(data: _Bytes, pos: int, budget: _Budget) -> tuple[int, int] | None:
    """Skip a chain of sub-blocks: (position after its terminator, payload bytes), or None
    when the file ends inside it."""
    payload = 0
    while True:
        offset = data.window(pos)
        buffer = data.buffer
        count = 0
        while offset < len(buffer):
            length = buffer[offset]
            if length == 0:
                budget.spend(count + 1)
                return data.start + offset + 1, payload
            offset += length + 1
            payload += length
            count += 1
        budget.spend(count)
        pos = data.start + offset
        if pos >= data.size:
            return None


# --------------------------------------------------------------------------------- PNG

_PNG_CHANNELS: Final = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _png(data: _Bytes, budget: _Budget, max_frames: int, damaged: str) -> Layout:
    """Walk the chunks to IEND: frames from acTL (as Pillow counts them), image data sizes."""
    header = data.read(8, 25)
    if len(header) < 25 or header[4:8] != b"IHDR":
        raise ImageRejected(damaged)
    width, height, depth, colour = struct.unpack_from(">IIBB", header, 8)
    pos = 8
    animation: int | None = None
    actl_seen = frame_before_data = data_seen = False
    image_bytes = 0
    incomplete = False
    while True:
        chunk = data.read(pos, 16)
        length, kind = struct.unpack_from(">I4s", chunk) if len(chunk) >= 8 else (0, b"")
        budget.spend(1)
        end = pos + 12 + length
        if not kind or end > data.size:
            incomplete = True  # cut off inside a chunk, or before IEND
            break
        if kind == b"IEND":
            break
        if kind in (b"IDAT", b"fdAT"):
            data_seen = data_seen or kind == b"IDAT"
            image_bytes += length
        elif not data_seen and kind == b"acTL" and len(chunk) >= 16:
            # Pillow reads acTL before the image data only, and ignores an invalid or second one.
            declared = struct.unpack_from(">I", chunk, 8)[0]
            animation = None if actl_seen or not 0 < declared <= 0x80000000 else declared
            actl_seen = True
        elif not data_seen and kind == b"fcTL":
            frame_before_data = True
        pos = end
    # The IDAT image is frame 0 of the animation, or a default image shown before it.
    frames = 1 if animation is None else animation + (0 if frame_before_data else 1)
    if frames > max_frames:
        raise ImageRejected(too_many_frames(max_frames))
    row_bytes = (width * _PNG_CHANNELS.get(colour, 4) * depth + 7) // 8
    incomplete |= _lying(height * (1 + row_bytes), image_bytes, _DEFLATE_RATIO)
    return Layout(frames, (width, height), frames * width * height, incomplete)


# -------------------------------------------------------------------------------- JPEG

# Markers Pillow reads a length for; the rest (JPG, RSTn, SOI, EOI, JPGn) stand alone.
_SEGMENTS: Final = frozenset({*range(0xC0, 0xC8), *range(0xC9, 0xD0), *range(0xDA, 0xF0), 0xFE})
# Frame headers (SOFn, and DHP, which Pillow reads as one); the arithmetic-coded ones apart.
_ARITHMETIC: Final = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_FRAME_HEADERS: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xDE, *_ARITHMETIC})


def _jpeg(data: _Bytes, budget: _Budget, damaged: str) -> Layout:
    """Walk the segments up to the first scan, as Pillow's header parsing does."""
    pos = 2
    size: tuple[int, int] | None = None
    arithmetic = False
    while True:
        marker = data.read(pos, 4)
        if len(marker) < 2:
            raise ImageRejected(damaged)  # the file ends before its first scan
        if marker[0] != 0xFF:
            # Pillow skips stray bytes before a marker, one at a time.
            offset = data.window(pos)
            found = data.buffer.find(b"\xff", offset)
            skipped = (found if found >= 0 else len(data.buffer)) - offset
            budget.spend(skipped)
            pos += skipped
            continue
        code = marker[1]
        budget.spend(1)
        if code == 0xDA:
            break
        if code in (0xFF, 0x00):
            pos += 1 if code == 0xFF else 2  # fill byte, or an escaped 0xFF
        elif code in _SEGMENTS:
            if len(marker) < 4:
                raise ImageRejected(damaged)
            length = struct.unpack_from(">H", marker, 2)[0]
            if code in _FRAME_HEADERS:
                frame = data.read(pos + 4, 5)
                if len(frame) < 5:
                    raise ImageRejected(damaged)
                height, width = struct.unpack_from(">HH", frame, 1)
                size, arithmetic = (width, height), code in _ARITHMETIC
            pos += 2 + length
        elif code >= 0xC0:
            pos += 2
        else:
            raise ImageRejected(damaged)  # no such marker: Pillow refuses it too
    if size is None:
        raise ImageRejected(damaged)
    pixels = size[0] * size[1]
    incomplete = not arithmetic and _lying(pixels, data.size, _JPEG_PIXELS_PER_BYTE)
    return Layout(1, size, pixels, incomplete)


# -------------------------------------------------------------------------------- WebP


def _webp(data: _Bytes, budget: _Budget, max_frames: int, damaged: str) -> Layout:
    """Walk the RIFF chunks: the canvas from VP8X or the one bitstream, a frame per ANMF."""
    riff = data.read(0, 12)
    end = min(8 + struct.unpack_from("<I", riff, 4)[0], data.size)
    pos = 12
    canvas: tuple[int, int] | None = None
    animated = incomplete = False
    frames = 0
    while pos + 8 <= end and not incomplete:
        chunk = data.read(pos, 18)
        kind, length = chunk[:4], struct.unpack_from("<I", chunk, 4)[0]
        budget.spend(1)
        incomplete = pos + 8 + length > data.size  # its header is there, the rest cut off
        if kind == b"VP8X" and len(chunk) >= 18:
            animated = bool(chunk[8] & 0x02)
            canvas = (1 + _u24(chunk, 12), 1 + _u24(chunk, 15))
        elif kind == b"ANMF":
            frames += 1
            if frames > max_frames:
                raise ImageRejected(too_many_frames(max_frames))
        elif canvas is None and kind == b"VP8 " and len(chunk) >= 18:
            width, height = struct.unpack_from("<HH", chunk, 14)
            canvas = (width & 0x3FFF, height & 0x3FFF)
        elif canvas is None and kind == b"VP8L" and len(chunk) >= 13:
            bits = int.from_bytes(chunk[9:13], "little")
            canvas = (1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF))
        pos += 8 + length + (length & 1)
    if canvas is None:
        raise ImageRejected(damaged)
    frames = max(1, frames) if animated else 1
    return Layout(frames, canvas, frames * canvas[0] * canvas[1], incomplete)


def _u24(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 3], "little")

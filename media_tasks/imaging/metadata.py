"""What an image says about itself: EXIF camera facts, GPS, orientation and ICC profile.

Everything is read defensively: metadata that cannot be read counts as absent, never as a
reason to refuse the upload.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from PIL import ExifTags, Image

from media_tasks.imaging.errors import PIL_ERRORS

# Same table as ImageOps.exif_transpose, applied here so it can run after downscaling.
_TRANSPOSE: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class GpsPosition:
    """A location in decimal degrees (WGS 84); show it to the owner only."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class ExifSummary:
    """Camera facts from EXIF; ``exposure_time`` is in seconds, ``gps`` is kept apart on purpose."""

    make: str | None = None
    model: str | None = None
    lens: str | None = None
    date_taken: str | None = None
    exposure_time: float | None = None
    f_number: float | None = None
    iso: int | None = None
    focal_length: float | None = None
    orientation: int = 1
    gps: GpsPosition | None = None


# ---------------------------------------------------------------- orientation and colour


def orientation_of(img: Image.Image) -> int:
    """EXIF (or XMP) orientation 1-8; anything unreadable counts as upright."""
    try:
        value = img.getexif().get(ExifTags.Base.Orientation, 1)
    except PIL_ERRORS:
        return 1
    return _orientation(value)


def turned_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """Width and height swapped when ``orientation`` turns by 90 degrees; the same swap maps a
    stored size to the upright one and back."""
    width, height = size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def upright(img: Image.Image, orientation: int) -> Image.Image:
    """The picture as it should be seen: ``img`` turned and flipped by its EXIF orientation."""
    if orientation in _TRANSPOSE:
        return img.transpose(_TRANSPOSE[orientation])
    return img


def icc_profile(img: Image.Image) -> bytes | None:
    value = img.info.get("icc_profile")
    return value if isinstance(value, bytes) and value else None


def _orientation(value: object) -> int:
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# ------------------------------------------------------------------------------ EXIF


def exif_summary(img: Image.Image) -> ExifSummary:
    """Read camera facts defensively: bad EXIF gives empty fields, never a rejected upload."""
    try:
        exif = img.getexif()
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except PIL_ERRORS:
        return ExifSummary()
    lens_parts = [_text(sub.get(ExifTags.Base.LensMake)), _text(sub.get(ExifTags.Base.LensModel))]
    lens_make, lens_model = lens_parts
    if lens_make and lens_model and lens_model.lower().startswith(lens_make.lower()):
        lens_make = None
    lens = " ".join(part for part in (lens_make, lens_model) if part) or None
    date = _date(
        sub.get(ExifTags.Base.DateTimeOriginal), sub.get(ExifTags.Base.OffsetTimeOriginal)
    ) or _date(sub.get(ExifTags.Base.DateTimeDigitized), None)
    iso = _number(sub.get(ExifTags.Base.ISOSpeedRatings))
    return ExifSummary(
        make=_text(exif.get(ExifTags.Base.Make)),
        model=_text(exif.get(ExifTags.Base.Model)),
        lens=lens,
        date_taken=date,
        exposure_time=_number(sub.get(ExifTags.Base.ExposureTime)),
        f_number=_number(sub.get(ExifTags.Base.FNumber)),
        iso=int(iso) if iso is not None else None,
        focal_length=_number(sub.get(ExifTags.Base.FocalLength)),
        orientation=_orientation(exif.get(ExifTags.Base.Orientation, 1)),
        gps=_gps(gps_ifd),
    )


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    cleaned = value.replace("\x00", "").strip()
    return cleaned[:200] or None


def _number(value: object) -> float | None:
    """A finite, non-negative EXIF number; tuples (e.g. ISO lists) use their first item."""
    if isinstance(value, (tuple, list)):
        value = value[0] if value else None
    # IFDRational is a numbers.Rational; a zero denominator makes it NaN, filtered below.
    if not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


_DATE = re.compile(r"(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"[+-]\d{2}:\d{2}")


def _date(value: object, offset: object) -> str | None:
    """EXIF "YYYY:MM:DD HH:MM:SS" (+ optional offset) as ISO 8601, or None when invalid."""
    text = _text(value)
    match = _DATE.match(text or "")
    if not match:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        moment = datetime(year, month, day, hour, minute, second)  # EXIF time is local
    except ValueError:
        return None
    zone = _text(offset)
    return moment.isoformat() + (zone if zone and _OFFSET.fullmatch(zone) else "")


def _degrees(value: object) -> float | None:
    """Degrees, minutes, seconds (any leading subset) to decimal degrees."""
    parts = value if isinstance(value, (tuple, list)) else (value,)
    values = [_number(part) for part in parts[:3]]
    if not values or any(v is None for v in values):
        return None
    return sum(v / 60.0**i for i, v in enumerate(values) if v is not None)


def _gps(ifd: dict[int, Any]) -> GpsPosition | None:
    lat = _degrees(ifd.get(ExifTags.GPS.GPSLatitude))
    lon = _degrees(ifd.get(ExifTags.GPS.GPSLongitude))
    if lat is None or lon is None or lat > 90 or lon > 180:
        return None
    if (_text(ifd.get(ExifTags.GPS.GPSLatitudeRef)) or "N").upper().startswith("S"):
        lat = -lat
    if (_text(ifd.get(ExifTags.GPS.GPSLongitudeRef)) or "E").upper().startswith("W"):
        lon = -lon
    return GpsPosition(lat=round(lat, 7), lon=round(lon, 7))

"""Validate uploaded images and derive renditions and analysis from them, with Pillow only.
Problems with the file itself raise ``ImageRejected``, whose ``reason`` users can read.

One module per job: ``validation`` (is it an acceptable image?), ``renditions`` (thumbnails),
``analysis`` (colours, perceptual hash, placeholder) and ``metadata`` (EXIF, GPS, orientation,
ICC); ``opening``, ``structure``, ``errors`` and ``pixels`` hold what they share.
"""

from media_tasks.imaging.analysis import Analysis, analyse, hamming
from media_tasks.imaging.errors import ImageRejected
from media_tasks.imaging.metadata import ExifSummary, GpsPosition
from media_tasks.imaging.opening import DEFAULT_FORMATS
from media_tasks.imaging.progress import ProgressCallback
from media_tasks.imaging.renditions import (
    AVIF_QUALITY,
    AVIF_SPEED,
    FORMATS,
    JPEG_QUALITY,
    WEBP_METHOD,
    WEBP_QUALITY,
    Rendition,
    formats_per_size,
    make_renditions,
    rendition_names,
)
from media_tasks.imaging.validation import (
    DEFAULT_MAX_FRAMES,
    ImageInfo,
    check_decodes,
    inspect_head,
    inspect_upload,
)

__all__ = [
    "AVIF_QUALITY",
    "AVIF_SPEED",
    "DEFAULT_FORMATS",
    "DEFAULT_MAX_FRAMES",
    "FORMATS",
    "JPEG_QUALITY",
    "WEBP_METHOD",
    "WEBP_QUALITY",
    "Analysis",
    "ExifSummary",
    "GpsPosition",
    "ImageInfo",
    "ImageRejected",
    "ProgressCallback",
    "Rendition",
    "analyse",
    "check_decodes",
    "formats_per_size",
    "hamming",
    "inspect_head",
    "inspect_upload",
    "make_renditions",
    "rendition_names",
]

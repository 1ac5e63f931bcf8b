"""What the workers do with an upload: make and store its renditions, analyse it.

Each step reads the stored original and overwrites what an earlier run of it stored, so that
running it twice makes nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import BinaryIO, cast

from django.conf import settings
from django.core.files.base import ContentFile

from media_tasks import imaging
from media_tasks.limits import image_limits
from media_tasks.models import Rendition, Upload, rendition_path
from workers.exceptions import PermanentFailure


def from_original[T](upload: Upload, work: Callable[[BinaryIO], T]) -> T:
    """Run `work` on the stored original; an image that cannot be used fails the job at once
    (PermanentFailure, with the reason)."""
    try:
        with upload.original.open("rb") as original:
            return work(cast(BinaryIO, original))
    except imaging.ImageRejected as rejected:
        raise PermanentFailure(rejected.reason) from None
    except FileNotFoundError:
        raise PermanentFailure("the original file is missing from storage") from None


def upload_renditions_make(
    *, upload: Upload, on_step: imaging.ProgressCallback | None = None
) -> list[imaging.Rendition]:
    """Make the renditions of THUMBNAIL_SIZES in THUMBNAIL_FORMATS from the original and store
    them, deleting any an earlier run made that the settings no longer ask for."""
    report = on_step or (lambda percent, message: None)
    renditions = from_original(
        upload,
        lambda original: imaging.make_renditions(
            original,
            sizes=settings.THUMBNAIL_SIZES,
            formats=settings.THUMBNAIL_FORMATS,
            on_step=lambda percent, message: report(percent * 9 // 10, message),
            **image_limits(),
        ),
    )
    report(95, "storing the renditions")
    renditions_store(upload=upload, renditions=renditions)
    return renditions


def upload_analyse(
    *, upload: Upload, on_step: imaging.ProgressCallback | None = None
) -> imaging.Analysis:
    """Analyse the original (EXIF, colours, perceptual hash, placeholders) and store that."""
    analysis = from_original(
        upload,
        lambda original: imaging.analyse(original, on_step=on_step, **image_limits()),
    )
    Upload.objects.filter(pk=upload.pk).update(
        analysis=analysis.as_json(),
        phash=analysis.phash,
        placeholder=analysis.placeholder,
        thumbhash=analysis.thumbhash,
    )
    return analysis


def renditions_store(*, upload: Upload, renditions: Sequence[imaging.Rendition]) -> None:
    """Store renditions under names derived from the upload, replacing any earlier run's, and
    delete the earlier ones not made this time (sizes or formats since taken out)."""
    storage = Rendition._meta.get_field("file").storage  # type: ignore[attr-defined]
    paths = [rendition_path(upload, made.name, extension_of(made)) for made in renditions]
    for made, path in zip(renditions, paths, strict=True):
        # Re-running the job overwrites: delete first, since storages pick a new name instead.
        storage.delete(path)
        stored = storage.save(path, ContentFile(made.data))
        Rendition.objects.update_or_create(
            upload=upload,
            name=made.name,
            defaults={
                "size": made.size,
                "width": made.width,
                "height": made.height,
                "format": made.format,
                "bytes": len(made.data),
                "file": stored,
            },
        )
    stale = Rendition.objects.filter(upload=upload).exclude(name__in=[r.name for r in renditions])
    for rendition in stale:
        rendition.file.delete(save=False)
        rendition.delete()
    if not Upload.objects.filter(pk=upload.pk).exists():
        # Deleted while we worked: leave no orphans behind.
        for path in paths:
            storage.delete(path)


def extension_of(rendition: imaging.Rendition) -> str:
    return Upload.EXTENSIONS[rendition.format]

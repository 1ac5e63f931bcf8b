"""Where originals are kept: apart from the media that web servers hand out.

Renditions are stripped of every piece of metadata and are served to anyone with their URL
(nginx's /media/, or the bucket's domain). Originals keep what the camera wrote, the GPS
position too, so only their owner fetches them, through media_tasks.views.upload_original:
on local disk they live under ORIGINALS_ROOT, which no web server serves, and nginx hands
them out only when the view says so (X-Accel-Redirect to an internal location); on S3 the view
redirects to a signed URL that expires within ORIGINALS_URL_EXPIRE seconds.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.core.files.storage.base import Storage
from django.utils.deconstruct import deconstructible
from django.utils.functional import cached_property


@deconstructible(path="media_tasks.storage.OriginalsStorage")
class OriginalsStorage(FileSystemStorage):
    """Originals on local disk, under ORIGINALS_ROOT; they have no URL of their own."""

    @cached_property
    def base_location(self) -> Any:
        return self._value_or_setting(self._location, settings.ORIGINALS_ROOT)  # type: ignore[attr-defined]

    def url(self, name: str | None) -> str:
        raise ValueError("originals have no public URL: media_tasks.views.upload_original")

    def _clear_cached_properties(self, setting: str, **kwargs: Any) -> None:
        super()._clear_cached_properties(setting, **kwargs)  # type: ignore[arg-type]
        if setting == "ORIGINALS_ROOT":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)


def originals_storage() -> Storage:
    """The storage of originals (STORAGES["originals"])."""
    return storages["originals"]

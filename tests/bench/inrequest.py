"""The upload benchmark's baseline: thumbnails made inside the upload request.

This is how sorl-thumbnail, easy-thumbnails and django-imagekit work when a thumbnail is first
asked for: a form's ImageField checks the file (Pillow open + verify), the original is stored,
then Pillow opens it, decodes it in full (no draft mode, as those libraries load the image
before resizing), and `thumbnail()` plus a WebP save make each size while the user waits.
It decodes once for all sizes, which is kinder than the libraries, which open the source again
per thumbnail. The URLconf is the project's plus this view; only tests/bench/settings.py uses it.
"""

from __future__ import annotations

import io
import uuid

from django import forms
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_POST
from PIL import Image, ImageOps

from media_tasks import imaging
from project.urls import urlpatterns as project_urlpatterns

URL = "/bench/inrequest/"


class UploadForm(forms.Form):
    image = forms.ImageField()


def webp_thumbnails(file: UploadedFile[bytes], sizes: list[int]) -> list[tuple[int, bytes]]:
    """Full decode, then one `thumbnail()` and WebP save per size, largest first."""
    file.seek(0)
    made: list[tuple[int, bytes]] = []
    with Image.open(file) as opened:
        opened.load()
        upright = ImageOps.exif_transpose(opened)
        for size in sorted(sizes, reverse=True):
            thumb = upright.copy()
            thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            thumb.save(buffer, "WEBP", quality=imaging.WEBP_QUALITY, method=imaging.WEBP_METHOD)
            made.append((size, buffer.getvalue()))
    return made


@require_POST
def upload_with_thumbnails(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"error": "log in first"}, status=401)
    form = UploadForm(files=request.FILES)
    if not form.is_valid():
        return JsonResponse({"error": form.errors.as_text()}, status=400)
    file = form.cleaned_data["image"]
    folder = f"inrequest/{uuid.uuid4().hex}"
    original = default_storage.save(f"{folder}/original", file)
    thumbnails = [
        default_storage.save(f"{folder}/{size}.webp", ContentFile(data))
        for size, data in webp_thumbnails(file, settings.THUMBNAIL_SIZES)
    ]
    return JsonResponse({"original": original, "thumbnails": thumbnails}, status=201)


urlpatterns = [
    *project_urlpatterns,
    path(URL.lstrip("/"), upload_with_thumbnails),
]

"""The uploads JSON API. Views only authenticate, parse, call a service and reply."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from functools import wraps
from typing import Any, cast
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from media_tasks import direct, selectors, services
from media_tasks.exceptions import MediaError, UploadRateLimited, UploadRejected, UploadTooLarge
from media_tasks.models import Rendition, Upload
from media_tasks.storage import originals_storage
from wire import errors
from wire.errors import error_response

PAGE_SIZE = 24
View = Callable[..., HttpResponseBase]


def api_login_required(view: View) -> View:
    """Answer 401 in JSON, not a redirect to the login page, to anonymous API calls."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return unauthenticated()
        return view(request, *args, **kwargs)

    return wrapped


def unauthenticated() -> JsonResponse:
    return error_response(code=errors.UNAUTHENTICATED, error="log in first", status=401)


def failure(rejected: MediaError) -> JsonResponse:
    extra = {}
    if isinstance(rejected, UploadRateLimited):
        extra["retry_after"] = round(rejected.retry_after)
    response = error_response(
        code=rejected.code, error=str(rejected), status=rejected.status, **extra
    )
    if "retry_after" in extra:
        response["Retry-After"] = str(extra["retry_after"])
    return response


@require_http_methods(["GET", "POST"])
async def uploads(request: HttpRequest) -> HttpResponse:
    """GET: the user's uploads, newest first, a page at a time. POST: new uploads.

    Async so that a client that goes away before its upload was accepted is noticed (Django
    cancels the view): the upload's thread is told, and keeps nothing."""
    user = await request.auser()
    if not user.is_authenticated:
        return unauthenticated()
    if request.method == "POST":
        abandoned = threading.Event()
        try:
            return await sync_to_async(create)(request, user, abandoned.is_set)
        except asyncio.CancelledError:
            abandoned.set()
            raise
    return await sync_to_async(listing)(request, user)


def listing(request: HttpRequest, user: Any) -> HttpResponse:
    paginator = Paginator(selectors.uploads_of(owner_id=user.pk), PAGE_SIZE)
    try:
        page = paginator.page(request.GET.get("page", 1))
    except (EmptyPage, PageNotAnInteger):
        return error_response(code=errors.NOT_FOUND, error="no such page", status=404)
    return JsonResponse(
        {
            "uploads": [selectors.upload_json(upload) for upload in page],
            "count": paginator.count,
            "page": page.number,
            "pages": paginator.num_pages,
            "next": page.next_page_number() if page.has_next() else None,
        }
    )


def create(request: HttpRequest, user: Any, abandoned: Callable[[], bool]) -> HttpResponse:
    # Refuse an oversized body before Django reads it to disk.
    limit = settings.UPLOAD_MAX_BYTES * settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1_000_000
    if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
        return failure(UploadTooLarge(f"the request is larger than {limit} bytes"))
    try:
        created = services.upload_create(
            owner=user, files=request.FILES.getlist("image"), abandoned=abandoned
        )
    except MediaError as rejected:
        return failure(rejected)
    return JsonResponse(
        {
            "uploads": [
                {
                    "id": upload.pk,
                    "status": upload.status,
                    "url": selectors.upload_json(upload)["url"],
                }
                for upload in created
            ]
        },
        status=202,
    )


def json_body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > 16 * 1024:
        raise UploadRejected("the request is larger than 16 KiB")
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise UploadRejected("the body is not JSON") from None
    if not isinstance(body, dict):
        raise UploadRejected("the body is not a JSON object")
    return body


@api_login_required
@require_POST
def direct_upload_start(request: HttpRequest) -> HttpResponse:
    """A signed form to post one file straight to S3: `{"name", "size", "type"}` ->
    `{"url", "fields", "token"}` (media_tasks/direct.py)."""
    try:
        body = json_body(request)
        size = body.get("size")
        if not isinstance(size, int) or isinstance(size, bool):
            raise UploadRejected("size must be a number of bytes")
        started = direct.direct_upload_start(
            owner=cast(Any, request.user),
            name=str(body.get("name", "")),
            size=size,
            content_type=str(body.get("type", "")),
        )
    except MediaError as rejected:
        return failure(rejected)
    return JsonResponse(started.as_json(), status=201)


@api_login_required
@require_POST
def direct_upload_complete(request: HttpRequest) -> HttpResponse:
    """`{"token"}` once the file is in the bucket: checked, stored and queued as any upload
    (202, the plain POST's answer)."""
    try:
        upload = direct.direct_upload_complete(
            owner=cast(Any, request.user), token=str(json_body(request).get("token", ""))
        )
    except MediaError as rejected:
        return failure(rejected)
    summary = {
        "id": upload.pk,
        "status": upload.status,
        "url": selectors.upload_json(upload)["url"],
    }
    return JsonResponse({"uploads": [summary]}, status=202)


@api_login_required
@require_http_methods(["GET", "DELETE"])
def upload_detail(request: HttpRequest, upload_id: int) -> HttpResponse:
    assert request.user.pk is not None  # api_login_required
    upload = selectors.upload_of(owner_id=request.user.pk, upload_id=upload_id)
    if upload is None:
        return error_response(code=errors.NOT_FOUND, error="no such upload", status=404)
    if request.method == "DELETE":
        services.upload_delete(upload=upload)
        return HttpResponse(status=204)
    similar = selectors.uploads_similar_to(upload=upload)
    return JsonResponse(selectors.upload_json(upload, similar=similar))


@api_login_required
@require_http_methods(["POST"])
def upload_cancel(request: HttpRequest, upload_id: int) -> HttpResponse:
    """Cancel the upload's processing (its owner only); the upload as it stands now."""
    assert request.user.pk is not None  # api_login_required
    upload = selectors.upload_of(owner_id=request.user.pk, upload_id=upload_id)
    if upload is None:
        return error_response(code=errors.NOT_FOUND, error="no such upload", status=404)
    services.upload_cancel(upload=upload)
    upload.refresh_from_db()
    return JsonResponse(selectors.upload_json(upload))


@api_login_required
@require_GET
def upload_original(request: HttpRequest, upload_id: int) -> HttpResponseBase:
    """The original file, to its owner only (anyone else: 404, as for no upload)."""
    assert request.user.pk is not None  # api_login_required
    upload = selectors.upload_of(owner_id=request.user.pk, upload_id=upload_id)
    if upload is None:
        return error_response(code=errors.NOT_FOUND, error="no such upload", status=404)
    return original_response(upload)


def original_response(upload: Upload) -> HttpResponseBase:
    """Hand the original over: a signed URL that soon expires (S3), nginx's internal location
    (X-Accel-Redirect), or the file itself (no nginx in front: development)."""
    return stored_file_response(
        upload.original,
        content_type=upload.content_type,
        filename=upload.original_name,
        accel_prefix=settings.ORIGINALS_X_ACCEL_REDIRECT,
    )


def rendition_response(rendition: Rendition) -> HttpResponseBase:
    """Hand a rendition over from a view that checked who may see it (the chat's, to a
    room's members), without naming its address under MEDIA_URL: a signed URL that soon
    expires (S3), nginx's own /media/ location reached internally (X-Accel-Redirect), or the
    file itself (development)."""
    return stored_file_response(
        rendition.file,
        content_type=f"image/{rendition.format.lower()}",
        filename=f"{rendition.name}{Upload.EXTENSIONS.get(rendition.format, '')}",
        accel_prefix=settings.MEDIA_URL if settings.ORIGINALS_X_ACCEL_REDIRECT else "",
    )


def stored_file_response(
    file: FieldFile, *, content_type: str, filename: str, accel_prefix: str
) -> HttpResponseBase:
    """A stored file to the one user a view let through: on S3 a redirect to a URL signed
    for ORIGINALS_URL_EXPIRE seconds, behind nginx `accel_prefix` + its name, else the
    bytes."""
    disposition = str(content_disposition_header(as_attachment=False, filename=filename))
    storage: Any = file.storage
    name = str(file.name)
    response: HttpResponseBase
    if not isinstance(storage, FileSystemStorage):
        # django-storages' S3Storage.url() signs with these; the originals' storage always
        # signs, whatever the media's own storage does (a public custom domain).
        return redirect(
            originals_storage().url(  # type: ignore[call-arg]
                name,
                parameters={
                    "ResponseContentDisposition": disposition,
                    "ResponseContentType": content_type,
                },
                expire=settings.ORIGINALS_URL_EXPIRE,
            )
        )
    if accel_prefix:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = accel_prefix + quote(name)
    else:
        response = FileResponse(file.open("rb"), content_type=content_type)
    response["Content-Disposition"] = disposition
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    # Whatever a browser might render from it runs in an origin of its own, without scripts.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    return response

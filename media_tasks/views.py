"""The uploads JSON API. Views only authenticate, parse, call a service and reply."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods

from media_tasks import selectors, services
from media_tasks.exceptions import MediaError, UploadTooLarge
from wire import errors
from wire.errors import error_response

PAGE_SIZE = 24
View = Callable[..., HttpResponse]


def api_login_required(view: View) -> View:
    """Answer 401 in JSON, not a redirect to the login page, to anonymous API calls."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return error_response(code=errors.UNAUTHENTICATED, error="log in first", status=401)
        return view(request, *args, **kwargs)

    return wrapped


@api_login_required
@require_http_methods(["GET", "POST"])
def uploads(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    if request.method == "POST":
        return create(request, request.user)
    paginator = Paginator(selectors.uploads_of(owner_id=request.user.pk), PAGE_SIZE)
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


def create(request: HttpRequest, user: User) -> HttpResponse:
    # Refuse an oversized body before Django reads it to disk.
    limit = settings.UPLOAD_MAX_BYTES * settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1_000_000
    if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
        too_large = UploadTooLarge(f"the request is larger than {limit} bytes")
        return error_response(code=too_large.code, error=str(too_large), status=too_large.status)
    try:
        created = services.upload_create(owner=user, files=request.FILES.getlist("image"))
    except MediaError as rejected:
        return error_response(code=rejected.code, error=str(rejected), status=rejected.status)
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


@api_login_required
@require_http_methods(["GET", "DELETE"])
def upload_detail(request: HttpRequest, upload_id: int) -> HttpResponse:
    assert isinstance(request.user, User)
    upload = selectors.upload_of(owner_id=request.user.pk, upload_id=upload_id)
    if upload is None:
        return error_response(code=errors.NOT_FOUND, error="no such upload", status=404)
    if request.method == "DELETE":
        services.upload_delete(upload=upload)
        return HttpResponse(status=204)
    similar = selectors.uploads_similar_to(upload=upload)
    return JsonResponse(selectors.upload_json(upload, similar=similar))

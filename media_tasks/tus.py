"""Resumable uploads on the wire: the tus 1.0 protocol (creation, creation-with-upload,
termination, expiration, checksum), and the IETF resumable-upload draft as tus-js-client 4
speaks it (`protocol: "ietf-draft-03"` or `"ietf-draft-05"`): the same requests under another
version header. The views only parse headers, call media_tasks/resumable.py and reply.

    POST   /api/uploads/tus/        Upload-Length, Upload-Metadata (filename) -> 201 Location
    HEAD   /api/uploads/tus/<key>   -> Upload-Offset, Upload-Length
    PATCH  /api/uploads/tus/<key>   Upload-Offset, the next bytes -> Upload-Offset
    DELETE /api/uploads/tus/<key>   -> 204
    GET    /api/uploads/tus/<key>   -> JSON: offset, length, and the upload once complete
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.http import http_date

from media_tasks import resumable, selectors
from media_tasks.exceptions import MediaError, UploadRejected
from media_tasks.models import PartialUpload
from media_tasks.views import failure, unauthenticated

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
# The Upload-Draft-Interop-Version tus-js-client sends: 5 for draft-03, 6 for draft-05.
IETF_INTEROP_VERSIONS = frozenset({"5", "6"})
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
FORMS = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
# Upload-Metadata: "key base64,key base64,flag"; more than this is not a file's name and type.
METADATA_MAX = 4096


@dataclass(frozen=True, slots=True)
class Dialect:
    """tus 1.0 (interop is None) or the IETF draft of that interop version."""

    interop: str | None = None

    def headers(self) -> dict[str, str]:
        if self.interop is not None:
            return {"Upload-Draft-Interop-Version": self.interop}
        return {"Tus-Resumable": TUS_VERSION}


def dialect_of(request: HttpRequest) -> Dialect | None:
    interop = request.headers.get("Upload-Draft-Interop-Version")
    if interop is not None:
        return Dialect(interop) if interop in IETF_INTEROP_VERSIONS else None
    return Dialect() if request.headers.get("Tus-Resumable") == TUS_VERSION else None


def reply(dialect: Dialect, status: int = 204, **headers: str) -> HttpResponse:
    response = HttpResponse(status=status)
    for name, value in {**dialect.headers(), **headers}.items():
        response[name.replace("_", "-")] = value
    response["Cache-Control"] = "no-store"
    return response


def refuse(dialect: Dialect, error: MediaError) -> HttpResponse:
    response = failure(error)
    for name, value in dialect.headers().items():
        response[name] = value
    return response


def unsupported_version() -> HttpResponse:
    response = HttpResponse(
        "Tus-Resumable 1.0.0 (or Upload-Draft-Interop-Version 5 or 6) is required",
        status=412,
        content_type="text/plain",
    )
    response["Tus-Version"] = TUS_VERSION
    return response


def offered() -> HttpResponse:
    """OPTIONS: what this server speaks (tus' discovery)."""
    return reply(
        Dialect(),
        Tus_Version=TUS_VERSION,
        Tus_Extension=TUS_EXTENSIONS,
        Tus_Max_Size=str(settings.UPLOAD_MAX_BYTES),
        Tus_Checksum_Algorithm=",".join(resumable.CHECKSUMS),
    )


def progress_headers(partial: PartialUpload, dialect: Dialect) -> dict[str, str]:
    headers = {
        "Upload-Offset": str(partial.offset),
        "Upload-Length": str(partial.length),
        "Upload-Expires": http_date(partial.expires_at.timestamp()),
    }
    if dialect.interop is not None:
        headers["Upload-Complete"] = "?1" if partial.offset == partial.length else "?0"
    return headers


def tus_uploads(request: HttpRequest) -> HttpResponse:
    """OPTIONS: discovery (anyone). POST: a new resumable upload of the logged-in user."""
    if request.method == "OPTIONS":
        return offered()
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "OPTIONS, POST"})
    dialect = dialect_of(request)
    if dialect is None:
        return unsupported_version()
    if not request.user.is_authenticated:
        return unauthenticated()
    try:
        length = header_int(request, "Upload-Length")
        metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
        # creation-with-upload: the first bytes may come with the POST.
        with_bytes = body_size(request) > 0 and (
            request.content_type == OFFSET_CONTENT_TYPE
            or (dialect.interop is not None and request.content_type not in FORMS)
        )
        partial = resumable.partial_create(
            owner=cast(Any, request.user), name=metadata.get("filename", ""), length=length
        )
    except MediaError as error:
        return refuse(dialect, error)
    if with_bytes:
        try:
            partial = append(request, partial.key, dialect, offset=0)
        except MediaError as error:
            resumable.partial_delete(owner=cast(Any, request.user), key=partial.key)
            return refuse(dialect, error)
    location = reverse("tus-upload", args=[partial.key])
    return reply(dialect, 201, Location=location, **progress_headers(partial, dialect))


def tus_upload(request: HttpRequest, key: uuid.UUID) -> HttpResponse:
    """HEAD: the offset to resume from. PATCH: the next bytes. DELETE: terminate. GET: JSON.
    Another user's upload is a 404, as for no upload."""
    method = request.method or ""
    if method == "POST":
        # For clients behind proxies that drop PATCH (tus-js-client's overridePatchMethod).
        method = request.headers.get("X-HTTP-Method-Override", "").upper()
    if method not in {"HEAD", "PATCH", "DELETE", "GET"}:
        return HttpResponse(status=405, headers={"Allow": "HEAD, PATCH, DELETE, GET"})
    dialect = dialect_of(request) if method != "GET" else Dialect()
    if dialect is None:
        return unsupported_version()
    if not request.user.is_authenticated:
        return unauthenticated()
    owner = cast(Any, request.user)
    try:
        if method == "PATCH":
            partial = append(request, key, dialect, offset=header_int(request, "Upload-Offset"))
        elif method == "DELETE":
            resumable.partial_delete(owner=owner, key=key)
            return reply(dialect)
        else:
            partial = resumable.partial_of(owner=owner, key=key)
    except MediaError as error:
        return refuse(dialect, error)
    if method == "GET":
        return JsonResponse(partial_json(partial))
    return reply(dialect, 200 if method == "HEAD" else 204, **progress_headers(partial, dialect))


def append(request: HttpRequest, key: uuid.UUID, dialect: Dialect, *, offset: int) -> PartialUpload:
    """The request's body as the bytes at `offset` (tus names their type; the drafts do not)."""
    content_type = request.content_type or ""
    if dialect.interop is None and content_type != OFFSET_CONTENT_TYPE:
        raise UploadRejected(f"chunks are sent as {OFFSET_CONTENT_TYPE}, not {content_type!r}")
    return resumable.partial_append(
        owner=cast(Any, request.user),
        key=key,
        offset=offset,
        body=cast(BinaryIO, request),
        size=body_size(request),
        checksum=parse_checksum(request.headers.get("Upload-Checksum")),
    )


def partial_json(partial: PartialUpload) -> dict[str, Any]:
    upload = None
    if partial.upload is not None:
        full = selectors.upload_json(partial.upload)
        upload = {key: full[key] for key in ("id", "status", "url")}
    return {
        "offset": partial.offset,
        "length": partial.length,
        "name": partial.name,
        "expires_at": partial.expires_at.isoformat(),
        "upload": upload,
    }


def body_size(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        raise UploadRejected("Content-Length is not a number") from None


def header_int(request: HttpRequest, name: str) -> int:
    value = request.headers.get(name)
    if value is None:
        raise UploadRejected(f"the {name} header is missing")
    if not value.isdigit() or len(value) > 20:
        raise UploadRejected(f"{name} must be a number of bytes, not {value[:40]!r}")
    return int(value)


def parse_metadata(header: str) -> dict[str, str]:
    """Upload-Metadata's pairs, values decoded (a key alone is a flag: empty value)."""
    if len(header) > METADATA_MAX:
        raise UploadRejected(f"Upload-Metadata is longer than {METADATA_MAX} characters")
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in header.split(","))):
        key, _, encoded = item.partition(" ")
        try:
            pairs[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise UploadRejected(f"Upload-Metadata {key!r} is not base64 of UTF-8") from None
    return pairs


def parse_checksum(header: str | None) -> resumable.Checksum | None:
    if not header:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in resumable.CHECKSUMS:
        raise UploadRejected(
            f"checksum algorithm {algorithm[:20]!r} is not one of {', '.join(resumable.CHECKSUMS)}"
        )
    try:
        return resumable.Checksum(algorithm, base64.b64decode(encoded, validate=True))
    except binascii.Error:
        raise UploadRejected("Upload-Checksum is not base64") from None

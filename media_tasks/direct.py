"""Uploads straight to S3 (MEDIA_STORAGE=s3): the bytes go from the browser to the bucket and
never through a web process.

1. `direct_upload_start` signs a POST form for one new object under `incoming/` (S3's
   presigned POST: the bucket itself refuses another content type, or a size outside
   1..UPLOAD_MAX_BYTES), after the owner's limits are checked for the size the client gives;
   it hands back a signed token naming the object, its owner and the file's name.
2. The browser posts the file to the bucket with that form.
3. `direct_upload_complete` takes the token back (its owner only, once: one upload per
   object, even for two completes at the same moment), asks the bucket for the
   object's size and its first HEAD_BYTES (a ranged GET, never the whole object), checks them
   as a plain upload's (format by content, dimensions, size, quota), copies the object inside
   the bucket to the upload's original and queues processing. The block structure and frames,
   which need the whole file, are the workers' checks, before their decode.
An object posted and never completed stays under `incoming/`: a lifecycle rule of the bucket
deletes it (README, "Direct uploads to S3").
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from django.conf import settings
from django.core import signing
from django.db import IntegrityError

from media_tasks import imaging
from media_tasks.exceptions import (
    MediaError,
    UploadNotFound,
    UploadRejected,
)
from media_tasks.limits import image_limits
from media_tasks.models import Upload, original_path
from media_tasks.services import (
    Checked,
    clean_filename,
    upload_quota_check,
    upload_size_check,
    uploads_store,
)
from media_tasks.storage import originals_storage

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

INCOMING = "incoming/"
# Enough for every allowed format's header (a JPEG's SOF comes after its EXIF, at most 64 KiB
# a segment, a few segments in practice).
HEAD_BYTES = 256 * 1024
_SALT = "media_tasks.direct"


class DirectUploadsOff(MediaError):
    status = 404
    code = "not_found"


@dataclass(frozen=True, slots=True)
class Started:
    """What the browser needs: where to post, the form's fields, and the token to complete."""

    url: str
    fields: dict[str, str]
    token: str

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "fields": self.fields, "token": self.token}


def _bucket() -> tuple[Any, str]:
    storage: Any = originals_storage()
    if settings.MEDIA_STORAGE != "s3" or not hasattr(storage, "bucket_name"):
        raise DirectUploadsOff("direct uploads need MEDIA_STORAGE=s3")
    return storage.connection.meta.client, storage.bucket_name


def direct_upload_start(*, owner: User, name: str, size: int, content_type: str) -> Started:
    """A presigned POST for one file of `size` bytes, refused as a plain upload of that size
    would be; the bucket enforces the content type and the size range."""
    client, bucket = _bucket()
    name = clean_filename(name)
    upload_size_check(name=name, size=size)
    if not content_type.startswith("image/") or len(content_type) > 64:
        raise UploadRejected(f"{name}: {content_type[:64]!r} is not an image type")
    upload_quota_check(owner=owner, sizes=[size])
    key = f"{INCOMING}{uuid.uuid4().hex}"
    post = client.generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[
            {"Content-Type": content_type},
            ["content-length-range", 1, settings.UPLOAD_MAX_BYTES],
        ],
        ExpiresIn=settings.DIRECT_UPLOAD_EXPIRE,
    )
    token = signing.dumps({"key": key, "owner": owner.pk, "name": name}, salt=_SALT)
    return Started(url=post["url"], fields=post["fields"], token=token)


def direct_upload_complete(*, owner: User, token: str) -> Upload:
    """Check the object the browser posted and make it an upload (its processing queued).
    A token of someone else's, or expired, or used, is UploadNotFound; a refused file is
    deleted from the bucket."""
    client, bucket = _bucket()
    try:
        claim = signing.loads(token, salt=_SALT, max_age=settings.DIRECT_UPLOAD_EXPIRE * 2)
    except signing.BadSignature:
        raise UploadNotFound("no such upload") from None
    if claim.get("owner") != owner.pk or not str(claim.get("key", "")).startswith(INCOMING):
        raise UploadNotFound("no such upload")
    key, name = claim["key"], claim["name"]
    try:
        size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError:
        raise UploadNotFound(f"{name}: nothing was uploaded for it (or it was used)") from None
    place = _copier(client, bucket, key)
    try:
        info = _check(client, bucket, key, name, size)
        (upload,) = uploads_store(
            owner=owner,
            checked=[Checked(name=name, size=size, info=info, place=place, direct_key=key)],
        )
    except IntegrityError:
        # An upload was made from this object already: the same token sent twice at once, or
        # the form posted again after its completion.
        client.delete_object(Bucket=bucket, Key=key)
        raise UploadNotFound(f"{name}: this upload was completed already") from None
    except MediaError:
        client.delete_object(Bucket=bucket, Key=key)
        raise
    client.delete_object(Bucket=bucket, Key=key)
    logger.info("upload=%s owner=%s came straight to S3 (%d bytes)", upload.pk, owner.pk, size)
    return upload


def _check(client: Any, bucket: str, key: str, name: str, size: int) -> imaging.ImageInfo:
    upload_size_check(name=name, size=size)
    head = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}")
    try:
        return imaging.inspect_head(
            head["Body"].read(HEAD_BYTES), max_pixels=image_limits()["max_pixels"]
        )
    except imaging.ImageRejected as rejected:
        raise UploadRejected(f"{name}: {rejected.reason}") from None


def _copier(client: Any, bucket: str, key: str) -> Callable[[Upload], None]:
    def place(upload: Upload) -> None:
        # Inside the bucket: the bytes do not pass through this process.
        target = original_path(upload, "")
        client.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key})
        upload.original.name = target

    return place

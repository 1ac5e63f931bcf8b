"""Resumable uploads (tus, media_tasks/tus.py): created with their length, appended to chunk
by chunk from the offset the server has, and once complete checked and stored exactly as a
plain upload (services.uploads_store), with the same limits, quotas and ownership.

Bytes wait in a file under UPLOAD_PARTIALS_ROOT. A chunk counts once it is all written: the
offset only moves in the transaction that wrote it, so a dropped connection loses at most the
chunk it was sending. A paused upload expires UPLOAD_RESUMABLE_EXPIRE after its last chunk;
the hourly clean-up (tasks.partial_uploads_expire) deletes it with its bytes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from django.contrib.auth import get_user_model
from django.core.files.base import File
from django.db import transaction
from django.utils import timezone

from media_tasks import partials
from media_tasks.exceptions import (
    MediaError,
    UploadChecksumMismatch,
    UploadExpired,
    UploadNotFound,
    UploadOffsetMismatch,
    UploadRejected,
    UploadsBusy,
    UploadTooLarge,
)
from media_tasks.models import PartialUpload, Upload
from media_tasks.services import (
    Checked,
    clean_filename,
    upload_check,
    upload_quota_check,
    upload_size_check,
    uploads_store,
)

if TYPE_CHECKING:
    import uuid

    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

# tus' checksum extension: the algorithms a client may name (all cheap next to the network).
CHECKSUMS: dict[str, Callable[[], hashlib._Hash]] = {
    "sha1": hashlib.sha1,
    "md5": hashlib.md5,
    "sha256": hashlib.sha256,
}
BLOCK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Checksum:
    algorithm: str
    digest: bytes


def partial_create(*, owner: User, name: str, length: int) -> PartialUpload:
    """Start a resumable upload of `length` bytes: refused as a plain upload of that size
    would be (too large, empty, past the owner's quota or hourly count)."""
    name = clean_filename(name)
    upload_size_check(name=name, size=length)
    with transaction.atomic():
        # As uploads_store: one upload of a user at a time, so the quota counts them all.
        get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
        upload_quota_check(owner=owner, sizes=[length])
        partial = PartialUpload.objects.create(
            owner=owner, name=name, length=length, expires_at=partials.expiry()
        )
    partial.path.parent.mkdir(parents=True, exist_ok=True)
    partial.path.touch()
    logger.info("partial=%s owner=%s length=%d created", partial.key, owner.pk, length)
    return partial


def partial_of(*, owner: User, key: uuid.UUID) -> PartialUpload:
    """The owner's resumable upload; anyone else's, or none, is UploadNotFound; an expired
    one is UploadExpired."""
    partial = PartialUpload.objects.filter(owner=owner, key=key).first()
    if partial is None:
        raise UploadNotFound("no such upload")
    if partial.expires_at <= timezone.now():
        raise UploadExpired(f"{partial.name}: the upload was paused too long and expired")
    return partial


def partial_append(
    *,
    owner: User,
    key: uuid.UUID,
    offset: int,
    body: BinaryIO,
    size: int,
    checksum: Checksum | None = None,
) -> PartialUpload:
    """Write `size` bytes of `body` at `offset`, which must be the server's; the last chunk
    completes the upload, which is then checked and stored as any upload. A chunk that does
    not match its checksum, or a rejected file, keeps nothing (a rejected file is deleted)."""
    rejection: MediaError | None = None
    with transaction.atomic():
        partial = partial_of(owner=owner, key=key)
        partial = PartialUpload.objects.select_for_update().get(pk=partial.pk)
        if partial.is_complete or offset != partial.offset:
            raise UploadOffsetMismatch(
                f"{partial.name}: the server has {partial.offset} bytes, not {offset}"
            )
        if offset + size > partial.length:
            raise UploadTooLarge(
                f"{partial.name}: {offset + size} bytes sent, {partial.length} announced"
            )
        _write(partial, body, size, checksum)
        partial.offset += size
        partial.expires_at = partials.expiry()
        if partial.offset == partial.length:
            try:
                partial.upload = _finish(partial)
            except UploadsBusy:
                raise  # the client sends the last chunk again
            except MediaError as error:
                rejection = error
        if rejection is None:
            partial.save(update_fields=["offset", "expires_at", "upload"])
    if rejection is not None:
        # Bytes that can never become an upload are of no use: free the space now.
        partials.partial_discard(partial)
        raise rejection
    if partial.is_complete:
        partial.path.unlink(missing_ok=True)
    return partial


def _write(partial: PartialUpload, body: BinaryIO, size: int, checksum: Checksum | None) -> None:
    digest = CHECKSUMS[checksum.algorithm]() if checksum else None
    written = 0
    with partial.path.open("r+b") as file:
        # Bytes past the offset are a chunk that did not count (its transaction rolled back).
        file.truncate(partial.offset)
        file.seek(partial.offset)
        while written < size:
            block = body.read(min(BLOCK, size - written))
            if not block:
                break
            file.write(block)
            written += len(block)
            if digest is not None:
                digest.update(block)
        if written != size:
            file.truncate(partial.offset)
            raise UploadRejected(f"{partial.name}: {written} bytes received of {size} sent")
        if checksum is not None and digest is not None and digest.digest() != checksum.digest:
            file.truncate(partial.offset)
            raise UploadChecksumMismatch(
                f"{partial.name}: the chunk does not match its {checksum.algorithm} checksum"
            )


def _finish(partial: PartialUpload) -> Upload:
    """Check the complete file and store it as an upload (in the caller's transaction)."""
    with partial.path.open("rb") as handle:
        file = File(handle, name=partial.name)
        info = upload_check(file=file)
        (upload,) = uploads_store(
            owner=partial.owner, checked=[Checked.of_file(file, info)], resuming=partial
        )
    logger.info("partial=%s complete: upload=%s", partial.key, upload.pk)
    return upload


def partial_delete(*, owner: User, key: uuid.UUID) -> None:
    """Terminate the owner's resumable upload: its bytes go (an upload made of it stays)."""
    partials.partial_discard(partial_of(owner=owner, key=key))

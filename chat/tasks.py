"""The chat's tasks: the `chat-messages` worker's (number a room's new messages and changes,
and broadcast them), and the hourly retention job (JOBS["SCHEDULE"])."""

import logging

from chat import publishing, retention
from workers.backends import task

logger = logging.getLogger(__name__)


# Retried for a long while (backoff up to RETRY_BACKOFF_MAX): a broadcast waits for Redis to
# come back, while the numbering is already safe in the database.
@task(queue_name="chat-messages", max_attempts=12, time_limit=60)
def message_publish(room_id: int) -> dict[str, int]:
    """Sequence and broadcast the room's waiting messages. Idempotent: a second run finds
    nothing to number and nothing unpublished, so a burst's later jobs cost little."""
    sequenced = publishing.messages_sequence(room_id=room_id)
    published = publishing.messages_publish(room_id=room_id)
    if sequenced or published:
        logger.debug("room=%s sequenced=%s published=%s", room_id, sequenced, published)
    return {"sequenced": sequenced, "published": published}


@task(queue_name="compute", unique=True, time_limit=3600)
def messages_expire() -> dict[str, int]:
    """Delete messages older than their room's retention. Idempotent: a rerun finds nothing."""
    deleted = retention.messages_expire()
    if deleted:
        logger.info("retention: %d messages deleted", deleted)
    return {"deleted": deleted}

"""Retention: a room's owner sets how long messages are kept; the job deletes older ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from chat.exceptions import InvalidMessage, NotAllowed
from chat.models import Message, MessageEvent, Reaction
from chat.publishing import messages_sequence
from chat.retention import messages_expire
from chat.services import (
    message_post,
    reaction_set,
    room_create,
    room_get_or_create,
    room_invite,
    room_retention_set,
)
from chat.tasks import messages_expire as messages_expire_task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_layer")]


def test_only_the_owner_sets_retention_within_bounds(user: Any, other_user: Any) -> None:
    room = room_create(creator=user, title="Team", private=True)
    room_invite(room=room, by=user, username=other_user.username)
    assert room_retention_set(room=room, by=user, days="30").retention_days == 30
    assert room_retention_set(room=room, by=user, days="").retention_days is None
    for days in ("0", "3651", "soon", -1):
        with pytest.raises(InvalidMessage, match="1 to 3650 days"):
            room_retention_set(room=room, by=user, days=days)
    with pytest.raises(NotAllowed, match="Only the room's owner"):
        room_retention_set(room=room, by=other_user, days="1")


def test_the_job_deletes_messages_past_their_room_s_retention_only(user: Any) -> None:
    kept_forever = room_get_or_create(name="forever")
    weekly = room_create(creator=user, name="weekly")
    room_retention_set(room=weekly, by=user, days=7)
    for room in (kept_forever, weekly):
        for body in ("old", "new"):
            message_post(room=room, author=user, body=body)
        messages_sequence(room_id=room.pk)
    old = Message.objects.get(room=weekly, body="old")
    reaction_set(room=weekly, user=user, message_id=old.pk, emoji="👍", on=True)
    Message.objects.filter(body="old").update(created_at=timezone.now() - timedelta(days=8))
    assert messages_expire() == 1
    assert sorted(Message.objects.values_list("room__name", "body")) == [
        ("forever", "new"),
        ("forever", "old"),
        ("weekly", "new"),
    ]
    assert not Reaction.objects.exists()
    assert not MessageEvent.objects.exists(), "its changes go with it"
    assert messages_expire_task.call() == {"deleted": 0}

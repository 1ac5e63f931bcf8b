"""The `chat-messages` task: numbers and publishes, and a rerun changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from chat.services import (
    message_post,
    room_get_or_create,
)
from chat.tasks import message_publish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_layer")]


def test_the_task_numbers_and_publishes_and_a_rerun_changes_nothing(user: Any) -> None:
    room = room_get_or_create(name="general")
    message_post(room=room, author=user, body="one")
    assert message_publish.call(room.pk) == {"sequenced": 1, "published": 1}
    assert message_publish.call(room.pk) == {"sequenced": 0, "published": 0}
    assert message_publish.call(room.pk + 1000) == {"sequenced": 0, "published": 0}

"""What the database itself guarantees about a room's order."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError

from chat.models import Message
from chat.services import (
    message_post,
    room_get_or_create,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_layer")]


def test_the_database_refuses_a_seq_twice_in_a_room(user: Any) -> None:
    room = room_get_or_create(name="general")
    message_post(room=room, author=user, body="a")
    message_post(room=room, author=user, body="b")
    with pytest.raises(IntegrityError):
        Message.objects.update(seq=1)

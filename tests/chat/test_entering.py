"""A connect's room (chat.services.rooms_enter, room_enter): the room and the membership of
many connects read in one statement, each connect with its own outcome."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.exceptions import InvalidRoomName, RoomNotFound
from chat.models import Membership, Room
from chat.services import room_create, room_enter, room_get_or_create, room_open, rooms_enter

pytestmark = pytest.mark.django_db


def test_each_connect_gets_its_own_outcome(
    user: Any, other_user: Any, django_user_model: Any
) -> None:
    third = django_user_model.objects.create_user("third", password="a-long-password-9")
    general = room_open(name="general", user=user)
    lobby = room_get_or_create(name="lobby")  # public, nobody in it yet
    private = room_create(creator=user, private=True)
    entering = [
        ("general", user),  # a member
        ("lobby", other_user),  # a public room: joins it
        (private.name, user),  # the private room's owner
        (private.name, third),  # not a member: as if there were no such room
        ("nowhere", user),  # a public room's name that would make the room
        ("private-nowhere", user),  # a private room that does not exist
        ("no spaces!", user),  # not a room name
    ]
    outcomes = rooms_enter(entering)
    assert [getattr(o, "pk", None) for o in outcomes[:3]] == [general.pk, lobby.pk, private.pk]
    assert isinstance(outcomes[3], RoomNotFound)
    assert outcomes[4] is None
    assert isinstance(outcomes[5], RoomNotFound)
    assert str(outcomes[5]) == str(outcomes[3])
    assert isinstance(outcomes[6], InvalidRoomName)
    assert Membership.objects.filter(room=lobby, user=other_user).exists()
    assert not Membership.objects.filter(room=private, user=third).exists()
    assert not Room.objects.filter(name="nowhere").exists()


def test_room_enter_raises_what_its_outcome_is(user: Any, other_user: Any) -> None:
    private = room_create(creator=user, private=True)
    assert room_enter(name=private.name, user=user) == private
    with pytest.raises(RoomNotFound):
        room_enter(name=private.name, user=other_user)
    with pytest.raises(InvalidRoomName):
        room_enter(name="a/b", user=user)
    assert room_enter(name="nowhere", user=user) is None


def test_members_entering_together_are_one_statement_each_with_its_own_room(
    user: Any, other_user: Any
) -> None:
    room_open(name="general", user=user)
    room_open(name="general", user=other_user)
    room_open(name="random", user=user)
    entering = [("general", user), ("general", other_user), ("random", user)] * 5
    with CaptureQueriesContext(connection) as statements:
        outcomes = rooms_enter(entering)
    assert len(statements) == 1, [statement["sql"] for statement in statements]
    assert [room.name for room in outcomes] == ["general", "general", "random"] * 5  # type: ignore[union-attr]
    assert len({id(room) for room in outcomes}) == len(outcomes)

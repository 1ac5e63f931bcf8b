"""The chat pages: the room list (with a form to make a room), a room (its live part is
static/chat/chat.js), search in a room and a message in context, the pictures of its messages,
and the forms a room's members use: invite, leave, remove, rename, retention."""

import functools
from collections.abc import Callable
from typing import Any, Concatenate

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat import services
from chat.events import REACTIONS
from chat.exceptions import NO_SUCH_ROOM, ChatError, InvalidRoomName, RoomNotFound
from chat.models import ROOM_NAME_MAX_LENGTH, Membership, Room
from chat.selectors import (
    messages_around,
    messages_search,
    picture_in,
    read_seq,
    room_members,
    rooms_active,
    rooms_with_unread,
)
from media_tasks.views import rendition_response


def signed_in(request: HttpRequest) -> User:
    """The user of a view behind login_required."""
    assert isinstance(request.user, User)
    return request.user


def list_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    mine = rooms_with_unread(user_id=signed_in(request).pk)
    joined = {room.pk for room in mine}
    return {
        "my_rooms": mine,
        "rooms": [room for room in rooms_active() if room.pk not in joined],
        "max_length": ROOM_NAME_MAX_LENGTH,
        "error": "",
        **extra,
    }


@require_http_methods(["GET", "POST"])
@login_required
def room_list(request: HttpRequest) -> HttpResponse:
    """The user's rooms and the public rooms; go to a room by name, or make one."""
    if request.method == "POST":
        try:
            room = services.room_create(
                creator=signed_in(request),
                title=request.POST.get("title", ""),
                private=request.POST.get("private") == "on",
                name=request.POST.get("name", "").strip(),
            )
        except ChatError as refused:
            context = list_context(request, error=str(refused))
            return render(request, "chat/room_list.html", context, status=400)
        return redirect("chat:room", room=room.name)
    wanted = request.GET.get("room")
    if wanted is not None:
        try:
            return redirect("chat:room", room=services.room_name_clean(wanted.strip()))
        except InvalidRoomName as invalid:
            context = list_context(request, error=str(invalid))
            return render(request, "chat/room_list.html", context, status=400)
    return render(request, "chat/room_list.html", list_context(request))


@require_GET
@login_required
def room_detail(request: HttpRequest, room: str) -> HttpResponse:
    try:
        opened = services.room_open(name=room, user=signed_in(request))
    except (InvalidRoomName, RoomNotFound) as missing:
        context = list_context(request, error=str(missing))
        return render(request, "chat/room_list.html", context, status=404)
    role = (
        Membership.objects.filter(room=opened, user=signed_in(request))
        .values_list("role", flat=True)
        .first()
    )
    return render(
        request,
        "chat/room.html",
        {
            "room": opened,
            "rooms": rooms_with_unread(user_id=signed_in(request).pk),
            "members": room_members(room=opened) if opened.is_private else [],
            "is_owner": role == Membership.Role.OWNER,
            "read_seq": read_seq(room=opened, user_id=signed_in(request).pk),
            "reactions": " ".join(REACTIONS),
        },
    )


def members_only[**P](
    view: Callable[Concatenate[HttpRequest, Room, P], HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """A view of a room's members, given the room (the URL's `room` is its name); anyone else
    gets the 404 page of a room that does not exist."""

    @functools.wraps(view)
    def wrapped(
        request: HttpRequest, room: str, *args: P.args, **kwargs: P.kwargs
    ) -> HttpResponseBase:
        found = services.room_visible(name=room, user=signed_in(request))
        if found is None or not found.memberships.filter(user=signed_in(request)).exists():
            context = list_context(request, error=NO_SUCH_ROOM)
            return render(request, "chat/room_list.html", context, status=404)
        return view(request, found, *args, **kwargs)

    return wrapped


@require_POST
@login_required
@members_only
def room_invite(request: HttpRequest, found: Room) -> HttpResponse:
    username = request.POST.get("username", "")
    try:
        services.room_invite(room=found, by=signed_in(request), username=username)
    except ChatError as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"{username.strip()} is a member now.")
    return redirect("chat:room", room=found.name)


@require_POST
@login_required
@members_only
def room_leave(request: HttpRequest, found: Room) -> HttpResponse:
    services.room_leave(room=found, user=signed_in(request))
    messages.success(request, f"You left {found.display_name}.")
    return redirect("chat:rooms")


@require_POST
@login_required
@members_only
def room_remove(request: HttpRequest, found: Room) -> HttpResponse:
    try:
        services.room_remove(
            room=found,
            by=signed_in(request),
            username=request.POST.get("username", ""),
        )
    except ChatError as refused:
        messages.error(request, str(refused))
    return redirect("chat:room", room=found.name)


@require_GET
@login_required
@members_only
def room_search(request: HttpRequest, found: Room) -> HttpResponse:
    """The room's messages matching the words asked for, each linking to it in context."""
    query = request.GET.get("q", "")
    return render(
        request,
        "chat/search.html",
        {"room": found, "query": query, "results": messages_search(room=found, query=query)},
    )


@require_GET
@login_required
@members_only
def message_in_context(request: HttpRequest, found: Room, seq: int) -> HttpResponse:
    """A message with the messages around it (where a search result leads)."""
    around = messages_around(room=found, seq=seq)
    if not any(message.seq == seq for message in around):
        context = list_context(request, error=f"There is no message {seq} in this room.")
        return render(request, "chat/room_list.html", context, status=404)
    return render(request, "chat/context.html", {"room": found, "messages": around, "seq": seq})


@require_GET
@login_required
@members_only
def picture(request: HttpRequest, found: Room, upload_id: int, name: str) -> HttpResponseBase:
    """A rendition of a picture of the room's messages, to its members only (anyone else, and
    a picture that is not the room's, gets the 404 page of no such room or picture). The
    original is not served here: it keeps its metadata, for its owner's eyes only."""
    rendition = picture_in(room=found, upload_id=upload_id, name=name)
    if rendition is None:
        context = list_context(request, error="There is no such picture in this room.")
        return render(request, "chat/room_list.html", context, status=404)
    return rendition_response(rendition)


@require_POST
@login_required
@members_only
def room_retention(request: HttpRequest, found: Room) -> HttpResponse:
    try:
        services.room_retention_set(
            room=found, by=signed_in(request), days=request.POST.get("days")
        )
    except ChatError as refused:
        messages.error(request, str(refused))
    else:
        kept = f"{found.retention_days} days" if found.retention_days else "for ever"
        messages.success(request, f"Messages of {found.display_name} are kept {kept}.")
    return redirect("chat:room", room=found.name)


@require_POST
@login_required
@members_only
def room_rename(request: HttpRequest, found: Room) -> HttpResponse:
    try:
        services.room_rename(room=found, by=signed_in(request), title=request.POST.get("title", ""))
    except ChatError as refused:
        messages.error(request, str(refused))
    return redirect("chat:room", room=found.name)

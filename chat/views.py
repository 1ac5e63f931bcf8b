"""The chat pages: the list of active rooms, and a room (its live part is static/chat/chat.js)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from chat.exceptions import InvalidRoomName
from chat.models import ROOM_NAME_MAX_LENGTH
from chat.selectors import rooms_active
from chat.services import room_name_clean


@require_GET
@login_required
def room_list(request: HttpRequest) -> HttpResponse:
    """Rooms with recent activity, and a box to enter (or create) a room by name."""
    wanted = request.GET.get("room")
    error = ""
    if wanted is not None:
        try:
            return redirect("chat:room", room=room_name_clean(wanted.strip()))
        except InvalidRoomName as invalid:
            error = str(invalid)
    return render(
        request,
        "chat/room_list.html",
        {"rooms": rooms_active(), "error": error, "max_length": ROOM_NAME_MAX_LENGTH},
        status=400 if error else 200,
    )


@require_GET
@login_required
def room_detail(request: HttpRequest, room: str) -> HttpResponse:
    try:
        name = room_name_clean(room)
    except InvalidRoomName as invalid:
        return render(
            request,
            "chat/room_list.html",
            {"rooms": rooms_active(), "error": str(invalid), "max_length": ROOM_NAME_MAX_LENGTH},
            status=404,
        )
    return render(request, "chat/room.html", {"room": name, "rooms": rooms_active()})

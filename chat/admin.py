from django.contrib import admin

from chat.models import Membership, Message, Presence, Room


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    raw_id_fields = ["user"]
    extra = 0


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "title", "is_private", "last_seq", "last_message_at", "created_at"]
    list_filter = ["is_private"]
    search_fields = ["name", "title"]
    inlines = [MembershipInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["room", "seq", "author", "created_at", "published_at"]
    list_filter = ["room"]
    search_fields = ["body", "author__username"]
    raw_id_fields = ["room", "author"]


@admin.register(Presence)
class PresenceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["room", "user", "connection_id", "seen_at"]
    raw_id_fields = ["room", "user"]

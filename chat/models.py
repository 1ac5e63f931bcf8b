"""Rooms, who belongs to them, their messages and the changes to them (edits, deletes, reactions,
a picture's processing) in one order per room, reactions, read markers, and who is connected."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from media_tasks.models import Upload

ROOM_NAME_MAX_LENGTH = 64


class RoomQuerySet(models.QuerySet["Room"]):
    def active(self) -> RoomQuerySet:
        """Rooms with at least one message, the most recently active first."""
        return self.filter(last_message_at__isnull=False).order_by("-last_message_at")

    def public(self) -> RoomQuerySet:
        return self.filter(is_private=False)

    def visible_to(self, user_id: int) -> RoomQuerySet:
        """The public rooms, and the private rooms the user is a member of."""
        return self.filter(Q(is_private=False) | Q(memberships__user_id=user_id)).distinct()


class Room(models.Model):
    # The room's address (/chat/<name>/). A private room's is made up when it is created
    # (PRIVATE_PREFIX and random letters): it cannot be guessed, and such a name is never
    # made into a room on first use, so that a private room looks to a non-member exactly
    # like a room that does not exist.
    name = models.CharField(max_length=ROOM_NAME_MAX_LENGTH, unique=True)
    # What the room is called on the page; its owner may change it.
    title = models.CharField(max_length=100, blank=True)
    is_private = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="chat_rooms_created",
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The highest sequence number given to a message of this room; only the publisher,
    # holding this row's lock, moves it.
    last_seq = models.PositiveBigIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Messages older than this many days are deleted by the hourly retention job; None keeps
    # them for ever. The owner sets it.
    retention_days = models.PositiveIntegerField(null=True, blank=True)

    objects = RoomQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        return self.title or f"#{self.name}"


class Membership(models.Model):
    """A user in a room. Members of a private room are the only ones who see it; a public
    room's member is anyone who joined it."""

    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="chat_membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id} ({self.role})"


class MessageQuerySet(models.QuerySet["Message"]):
    def sequenced(self) -> MessageQuerySet:
        """Messages that have their place in the room's order: the ones users see."""
        return self.filter(seq__isnull=False)

    def pending(self) -> MessageQuerySet:
        """Accepted messages still waiting for a sequence number, in the order they came."""
        return self.filter(seq__isnull=True).order_by("id")

    def unpublished(self) -> MessageQuerySet:
        """Sequenced messages whose broadcast has not been confirmed, in room order."""
        return self.filter(seq__isnull=False, published_at__isnull=True).order_by("seq")


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages"
    )
    body = models.TextField()
    # Chosen by the sender's page, so that a retry after a lost connection is recognised.
    client_id = models.CharField(max_length=64)
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    # The sender's connection: it gets the acknowledgement with the sequence number.
    reply_to = models.CharField(max_length=64, blank=True)
    # The usernames of the room's members that the body mentions (`@name`), as posted.
    mentions = models.JSONField(default=list, blank=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    # A deleted message stays in the order as a tombstone: its body is emptied (the text
    # is kept in its MessageEvent, for the author and the room's owner).
    deleted_at = models.DateTimeField(null=True, blank=True)
    # A picture sent with the message: one of its author's uploads (the uploads app processes
    # it). Deleting the message, or its room's retention, deletes the upload; an upload its
    # owner deletes leaves the message without its picture.
    picture = models.OneToOneField(
        Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="chat_message"
    )
    # The picture's status the room was last told of (a change to it is a MessageEvent).
    picture_status = models.CharField(max_length=16, blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="chat_message_room_seq"),
            models.UniqueConstraint(
                fields=["room", "author", "client_id"], name="chat_message_client_id"
            ),
        ]
        indexes = [
            models.Index(
                fields=["room", "id"], condition=Q(seq__isnull=True), name="chat_message_pending"
            ),
            models.Index(
                fields=["room", "seq"],
                condition=Q(seq__isnull=False, published_at__isnull=True),
                name="chat_message_unpublished",
            ),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} in {self.room_id} seq={self.seq}"


class MessageEventQuerySet(models.QuerySet["MessageEvent"]):
    def pending(self) -> MessageEventQuerySet:
        return self.filter(seq__isnull=True).order_by("id")

    def unpublished(self) -> MessageEventQuerySet:
        return self.filter(seq__isnull=False, published_at__isnull=True).order_by("seq")


class MessageEvent(models.Model):
    """A change to a sequenced message (edit, delete, reaction, its picture's processing moved
    on: started, done or failed). It takes the next number of
    the room's one sequence, as messages do, so that a replay with `?since=` and a hub's gap
    filling carry it; its frame shows the message as it is now."""

    class Action(models.TextChoices):
        EDIT = "edit"
        DELETE = "delete"
        REACTION = "reaction"
        PICTURE = "picture"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="message_events")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_message_events"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    # The text the message had before an edit or a delete: its earlier versions.
    previous_body = models.TextField(blank=True)
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)

    objects = MessageEventQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="chat_event_room_seq"),
        ]
        indexes = [
            models.Index(
                fields=["room", "id"], condition=Q(seq__isnull=True), name="chat_event_pending"
            ),
            models.Index(
                fields=["room", "seq"],
                condition=Q(seq__isnull=False, published_at__isnull=True),
                name="chat_event_unpublished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} of message {self.message_id} seq={self.seq}"


class Reaction(models.Model):
    """One user's emoji on a message: at most one of each emoji per user per message."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_reactions"
    )
    emoji = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user", "emoji"], name="chat_reaction_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user_id} on {self.message_id}"


class ReadMarker(models.Model):
    """How far a user has read a room (the highest seq seen), the same on every device."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="read_markers")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_read_markers"
    )
    seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="chat_read_marker_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.room_id} up to {self.seq}"


def presence_cutoff(*, ttl: float, now: datetime | None = None) -> datetime:
    """A connection touched since this is live; one touched before it, its server's is gone."""
    return (now or timezone.now()) - timedelta(seconds=ttl)


class PresenceQuerySet(models.QuerySet["Presence"]):
    def live(self, *, ttl: float, now: datetime | None = None) -> PresenceQuerySet:
        """Connections whose server touched them within `ttl` seconds."""
        return self.filter(seen_at__gte=presence_cutoff(ttl=ttl, now=now))

    def expired(self, *, ttl: float, now: datetime | None = None) -> PresenceQuerySet:
        """Connections of a server that stopped touching them: it died or lost the database."""
        return self.filter(seen_at__lt=presence_cutoff(ttl=ttl, now=now))


class Presence(models.Model):
    """One open websocket in a room; a user is present while any of theirs is live."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="presences")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_presences"
    )
    connection_id = models.CharField(max_length=64, unique=True)
    seen_at = models.DateTimeField(default=timezone.now)

    objects = PresenceQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["room", "seen_at"], name="chat_presence_room_seen")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id} via {self.connection_id}"

"""Rooms, who belongs to them, their messages in one order per room, and who is connected."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

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


class PresenceQuerySet(models.QuerySet["Presence"]):
    def live(self, *, ttl: float, now: datetime | None = None) -> PresenceQuerySet:
        """Connections whose server touched them within `ttl` seconds."""
        cutoff = (now or timezone.now()) - timedelta(seconds=ttl)
        return self.filter(seen_at__gte=cutoff)

    def expired(self, *, ttl: float, now: datetime | None = None) -> PresenceQuerySet:
        """Connections of a server that stopped touching them: it died or lost the database."""
        cutoff = (now or timezone.now()) - timedelta(seconds=ttl)
        return self.filter(seen_at__lt=cutoff)


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

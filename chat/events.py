"""The chat websocket's protocol: frame types, payloads and close codes, shared by the consumer,
the publisher (a worker) and the page.

Frames a client sends:
    {"type": "chat.message", "body": "...", "client_id": "..."}
    {"type": "chat.history", "before": <seq>}            older messages, a page at a time
Frames the server sends:
    chat.history   on connect (the latest messages, or what was missed since `?since=<seq>`),
                   and in answer to a `before` request
    chat.message   a message, in sequence order, each seq once
    chat.ack       to the sender: "accepted" once stored, and "sequenced" with its seq (the
                   two may cross; "sequenced" always comes before the message itself)
    chat.presence  who is in the room (`users`), then changes (`joined`, `left`)
    chat.error     a refused frame (wire.errors' shape: code, error); the connection stays open
Close codes: wire.close.
"""

from typing import NotRequired, TypedDict

CHAT_MESSAGE = "chat.message"
CHAT_HISTORY = "chat.history"
CHAT_ACK = "chat.ack"
CHAT_PRESENCE = "chat.presence"
CHAT_ERROR = "chat.error"
# Internal: the publisher's group message to the room's hubs, never sent to a client.
CHAT_BROADCAST = "chat.broadcast"
# Internal: a user is no longer a member; the hubs close that user's sockets to the room.
CHAT_MEMBER_GONE = "chat.member_gone"

ACK_ACCEPTED = "accepted"
ACK_SEQUENCED = "sequenced"


class MessagePayload(TypedDict):
    type: str
    id: int
    seq: int
    room: str
    author: str
    body: str
    created_at: str
    client_id: str


class Broadcast(TypedDict):
    """Newly sequenced messages for a room's hubs, in seq order; `reply_to[i]` is the id of the
    connection that sent `messages[i]`, which also gets the acknowledgement."""

    type: str
    messages: list[MessagePayload]
    reply_to: list[str]


class MemberGone(TypedDict):
    type: str
    user: int


class HistoryPayload(TypedDict):
    type: str
    messages: list[MessagePayload]
    # Older messages exist before the first one sent (the page may ask with `before`).
    has_more: bool
    # Answers a `before` request: the page prepends these.
    before: NotRequired[int]
    # More was missed than a replay sends: the page drops what it shows and starts over.
    reset: NotRequired[bool]


class AckPayload(TypedDict):
    type: str
    client_id: str
    status: str
    id: int
    seq: int | None


class PresencePayload(TypedDict):
    type: str
    users: NotRequired[list[str]]
    joined: NotRequired[list[str]]
    left: NotRequired[list[str]]


def ack(*, client_id: str, message_id: int, seq: int | None) -> AckPayload:
    """The sender's acknowledgement: stored ("accepted", no seq yet), or numbered."""
    return {
        "type": CHAT_ACK,
        "client_id": client_id,
        "status": ACK_ACCEPTED if seq is None else ACK_SEQUENCED,
        "id": message_id,
        "seq": seq,
    }


def room_group(room_id: int) -> str:
    """The channel-layer group of a room's connections (ids keep it a valid group name)."""
    return f"chat.room.{room_id}"

"""The chat websocket's protocol: frame types, payloads and close codes, shared by the consumer,
the publisher (a worker) and the page.

Frames a client sends:
    {"type": "chat.message", "body": "...", "client_id": "..."}
    {"type": "chat.history", "before": <seq>}            older messages, a page at a time
    {"type": "chat.edit", "message": <id>, "body": "..."}   the author only
    {"type": "chat.delete", "message": <id>}              the author, or the room's owner
    {"type": "chat.react", "message": <id>, "emoji": "👍", "on": true|false}
    {"type": "chat.read", "seq": <seq>}                   read up to here (never moves back)
    {"type": "chat.typing"}                               at most one per TYPING_INTERVAL
    {"type": "chat.revisions", "message": <id>}           earlier texts: author and owner only
    {"type": "chat.picture", "upload": <id>, "body": "...", "client_id": "..."}
                                                          a message with one of the sender's
                                                          uploads (POST /api/uploads/) as its
                                                          picture; the body may be empty
Frames the server sends:
    chat.history   on connect (the latest messages, or what was missed since `?since=<seq>`),
                   and in answer to a `before` request; `updates` (chat.update frames) may
                   follow the messages in a replay
    chat.message   a message, in sequence order, each seq once
    chat.update    an edit, delete or reaction, with its own seq in the same order as the
                   messages (replayed and gap-filled like them): `action`, `by`, and the
                   `message` as it is now (`edited_at`, `deleted`, `reactions`, `picture`);
                   `action` "picture": its picture's processing started, is done or failed
                   (`picture.status`, and `picture.error` or its thumbnail's URL)
    chat.progress  a picture's processing, live and not stored (a reconnect gets the status
                   in the message, and the outcome as a chat.update): `upload`, `job`, `task`,
                   `status`, `progress` (0-100), `message`
    chat.typing    who is typing now (`users`), every TYPING_BATCH at most; a name not
                   repeated within TYPING_EXPIRE has stopped
    chat.activity  a new message in another of the user's rooms (`room`, `seq`, `author`):
                   the page counts it as unread
    chat.mention   to every open socket of a mentioned user: `room`, `seq`, `author`, `body`
    chat.read      to the user's other sockets: `room`, `seq` (read elsewhere), `unread`
    chat.revisions the earlier texts of a message (`message`, `revisions`)
    chat.ack       to the sender: "accepted" once stored, and "sequenced" with its seq (the
                   two may cross; "sequenced" always comes before the message itself)
    chat.presence  who is in the room (`users`: the first `limit` names, PRESENCE_LIST;
                   `count`: how many in all), then changes (`joined`, `left`, and `count`)
    chat.error     a refused frame (wire.errors' shape: code, error); the connection stays open
Close codes: wire.close.
"""

from typing import NotRequired, TypedDict

CHAT_MESSAGE = "chat.message"
CHAT_HISTORY = "chat.history"
CHAT_ACK = "chat.ack"
CHAT_PRESENCE = "chat.presence"
CHAT_ERROR = "chat.error"
CHAT_EDIT = "chat.edit"
CHAT_DELETE = "chat.delete"
CHAT_REACT = "chat.react"
CHAT_READ = "chat.read"
CHAT_TYPING = "chat.typing"
CHAT_REVISIONS = "chat.revisions"
CHAT_UPDATE = "chat.update"
CHAT_ACTIVITY = "chat.activity"
CHAT_MENTION = "chat.mention"
CHAT_PICTURE = "chat.picture"
CHAT_PROGRESS = "chat.progress"
# Internal: the publisher's group message to the room's hubs, never sent to a client.
CHAT_BROADCAST = "chat.broadcast"
# Internal: a user is no longer a member; the hubs close that user's sockets to the room.
CHAT_MEMBER_GONE = "chat.member_gone"

# The emoji a message may be given: a small fixed set, so that counts stay readable.
REACTIONS = ("👍", "❤️", "😂", "🎉", "😮", "😢")

ACK_ACCEPTED = "accepted"
ACK_SEQUENCED = "sequenced"


class ReactionCount(TypedDict):
    emoji: str
    count: int
    # Who reacted, the first REACTION_NAMES of them.
    users: list[str]


class RenditionPayload(TypedDict):
    name: str
    width: int
    height: int
    format: str
    url: str


class PicturePayload(TypedDict):
    """A message's picture as the room's members see it; its URLs are the room's own
    (members only), never the uploads app's."""

    upload: int
    # The upload's: queued, processing, done, failed.
    status: str
    progress: int
    error: str
    width: int
    height: int
    # Base64 of the ThumbHash once the analysis made it ("" before): the page's placeholder.
    thumbhash: str
    # The smallest rendition, for the message ("" until there is one); `renditions` all.
    thumbnail: str
    renditions: list[RenditionPayload]
    # The upload's jobs: the room's hubs follow their progress (chat.progress).
    jobs: list[int]


class ProgressPayload(TypedDict):
    type: str
    upload: int
    job: int
    task: str
    status: str
    progress: int
    message: str


class MessagePayload(TypedDict):
    type: str
    id: int
    seq: int
    room: str
    author: str
    body: str
    created_at: str
    client_id: str
    mentions: list[str]
    edited_at: str | None
    deleted: bool
    reactions: list[ReactionCount]
    picture: PicturePayload | None


class UpdatePayload(TypedDict):
    type: str
    seq: int
    room: str
    action: str
    by: str
    message: MessagePayload


# What takes a place in a room's sequence.
Sequenced = MessagePayload | UpdatePayload


class Broadcast(TypedDict):
    """Newly sequenced messages and updates for a room's hubs, in seq order; `reply_to[i]`
    is the id of the connection that sent `messages[i]` (a message, not an update), which also
    gets the acknowledgement."""

    type: str
    messages: list[Sequenced]
    reply_to: list[str]


class TypingPayload(TypedDict):
    type: str
    users: list[str]


class Typing(TypedDict):
    """Internal: who typed at one hub's connections (`hub`: its channel), to the room's other
    hubs, which batch it with their own."""

    type: str
    users: list[str]
    hub: str


class ActivityPayload(TypedDict):
    type: str
    room: str
    seq: int
    author: str


class MentionPayload(TypedDict):
    type: str
    # The user's group in wire.sockets: the hub hands it to that user's sockets.
    user: int
    room: str
    title: str
    seq: int
    author: str
    body: str


class ReadPayload(TypedDict):
    type: str
    user: int
    room: str
    seq: int
    unread: int


class Revision(TypedDict):
    body: str
    replaced_at: str
    action: str


class MemberGone(TypedDict):
    type: str
    user: int


class HistoryPayload(TypedDict):
    type: str
    messages: list[MessagePayload]
    # In a replay: the changes since `since`, in seq order, after the messages.
    updates: NotRequired[list[UpdatePayload]]
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
    # How many users are in the room; `users` names the first `limit` (PRESENCE_LIST) of them.
    count: int
    users: NotRequired[list[str]]
    limit: NotRequired[int]
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

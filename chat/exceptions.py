"""Errors of the chat. Their messages are shown to users as they are."""

from wire import errors


class ChatError(Exception):
    """Base class of the chat's errors; `code` lets the page react without parsing text."""

    code = "invalid"


class InvalidRoomName(ChatError):
    code = "bad_room"


class InvalidFrame(ChatError):
    """A frame that is not a JSON object of a known type."""

    code = errors.BAD_FRAME


class InvalidMessage(ChatError):
    """A message the rules refuse: empty, too long, or with characters that cannot be stored."""

    code = "invalid"


class RateLimited(ChatError):
    code = errors.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RoomNotFound(ChatError):
    """No such room, or a private room the user is not a member of: the same answer."""

    code = errors.NOT_FOUND


NO_SUCH_ROOM = "There is no such room, or you are not one of its members."


class NotAllowed(ChatError):
    """Something only the room's owner (or a member) may do."""

    code = "forbidden"


class MessageNotFound(ChatError):
    """No such message in this room (another room's message is not found either)."""

    code = errors.NOT_FOUND


class PictureNotFound(ChatError):
    """No such upload of the sender's, or no such picture in this room."""

    code = errors.NOT_FOUND

"""Delivery in sequence order: each seq once, none skipped.

The publisher broadcasts a room's messages in order, but a layer may still reorder (senders on
machines whose clocks differ) or drop (a full or restarted Redis) them. The room's hub in each
server passes what it receives through a `Sequencer`: repeats are dropped, a message ahead of a
missing one is held, and if the gap does not close by itself the hub reads it from the
database.
"""

from __future__ import annotations

from chat.events import Sequenced


class Sequencer:
    """Releases messages in seq order, starting after `cursor` (the last seq the client has)."""

    def __init__(self, cursor: int) -> None:
        self.cursor = cursor
        self.held: dict[int, Sequenced] = {}

    def offer(self, message: Sequenced) -> list[Sequenced]:
        """Take one message; return the messages now ready to send, in order."""
        seq = message["seq"]
        if seq > self.cursor and seq not in self.held:
            self.held[seq] = message
        return self._release()

    def gap(self) -> tuple[int, int] | None:
        """(after, upto): messages wait beyond a missing one; read the seqs in between."""
        if not self.held:
            return None
        return self.cursor, max(self.held)

    def fill(self, messages: list[Sequenced]) -> list[Sequenced]:
        """Take the messages read for the gap and release everything held; a seq still missing
        is skipped, so that one lost message never holds up the room."""
        ready = [m for message in messages for m in self.offer(message)]
        while self.held:
            self.cursor = min(self.held) - 1
            ready.extend(self._release())
        return ready

    def _release(self) -> list[Sequenced]:
        ready = []
        while self.cursor + 1 in self.held:
            self.cursor += 1
            ready.append(self.held.pop(self.cursor))
        return ready

"""A connection's sequencer: each seq once, in order, gaps held and then filled or skipped."""

from typing import Any

from chat.delivery import Sequencer


def message(seq: int) -> Any:
    return {"type": "chat.message", "seq": seq, "body": f"m{seq}"}


def seqs(messages: list[Any]) -> list[int]:
    return [m["seq"] for m in messages]


def test_in_order_messages_pass_straight_through_and_repeats_are_dropped() -> None:
    sequencer = Sequencer(cursor=4)
    assert seqs(sequencer.offer(message(5))) == [5]
    assert seqs(sequencer.offer(message(6))) == [6]
    assert sequencer.offer(message(6)) == []
    assert sequencer.offer(message(3)) == []
    assert sequencer.gap() is None


def test_a_message_ahead_of_a_missing_one_waits_for_it() -> None:
    sequencer = Sequencer(cursor=0)
    assert sequencer.offer(message(3)) == []
    assert sequencer.offer(message(2)) == []
    assert sequencer.gap() == (0, 3)
    assert seqs(sequencer.offer(message(1))) == [1, 2, 3]
    assert sequencer.gap() is None


def test_a_gap_is_filled_from_what_was_read_and_anything_still_missing_is_skipped() -> None:
    sequencer = Sequencer(cursor=10)
    sequencer.offer(message(14))
    sequencer.offer(message(17))
    assert sequencer.gap() == (10, 17)
    read = [message(11), message(12), message(13), message(14), message(16), message(17)]
    assert seqs(sequencer.fill(read)) == [11, 12, 13, 14, 16, 17]
    assert sequencer.gap() is None
    assert sequencer.cursor == 17
    assert sequencer.offer(message(15)) == [], "a skipped seq that turns up late stays skipped"

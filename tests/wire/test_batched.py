"""Calls made once for the items that arrive together (wire.batching.Batched)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from wire.batching import Batched, per_loop


async def test_items_added_together_are_one_call_in_order() -> None:
    calls: list[list[int]] = []
    batched = Batched(calls.append)
    await asyncio.gather(*(batched.add(n) for n in range(10)))
    assert calls == [list(range(10))]


async def test_what_is_added_during_a_call_goes_in_the_next_and_at_most_most_in_one() -> None:
    calls: list[list[int]] = []
    release = threading.Event()

    def call(items: list[int]) -> None:
        calls.append(items)
        if len(calls) == 1:
            assert release.wait(10)

    batched = Batched(call, most=2)
    first = asyncio.ensure_future(batched.add(0))
    while not calls:  # the first call is under way, holding its thread
        await asyncio.sleep(0.01)
    later = [asyncio.ensure_future(batched.add(n)) for n in range(1, 6)]
    await asyncio.sleep(0.05)
    assert not first.done()
    release.set()
    await asyncio.gather(first, *later)
    assert calls == [[0], [1, 2], [3, 4], [5]]


async def test_a_failed_call_raises_in_its_waiters_only() -> None:
    calls: list[list[str]] = []

    def call(items: list[str]) -> None:
        calls.append(items)
        if "bad" in items:
            raise ValueError("refused")

    batched = Batched(call)
    outcomes = await asyncio.gather(batched.add("bad"), batched.add("x"), return_exceptions=True)
    assert [type(o) for o in outcomes] == [ValueError, ValueError]
    await batched.add("good")
    assert calls == [["bad", "x"], ["good"]]


async def test_a_cancelled_waiter_leaves_its_item_in_the_call() -> None:
    calls: list[list[int]] = []
    batched = Batched(calls.append)
    waiter = asyncio.ensure_future(batched.add(1))
    other = asyncio.ensure_future(batched.add(2))
    await asyncio.sleep(0)
    waiter.cancel()
    await other
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert calls == [[1, 2]]


async def test_each_waiter_gets_what_its_call_returned() -> None:
    def call(items: list[int]) -> dict[int, int]:
        return {item: item * 2 for item in items}

    batched = Batched(call, most=2)
    outcomes = await asyncio.gather(*(batched.add(n) for n in range(3)))
    assert outcomes == [{0: 0, 1: 2}, {0: 0, 1: 2}, {2: 4}]


async def test_add_one_gets_its_own_items_outcome_and_raises_its_own_exception() -> None:
    def call(items: list[int]) -> list[int | Exception]:
        return [ValueError(f"no {item}") if item == 3 else item * 2 for item in items]

    batched = Batched(call, most=2)
    outcomes = await asyncio.gather(*(batched.add_one(n) for n in range(5)), return_exceptions=True)
    assert outcomes[:3] == [0, 2, 4]
    assert isinstance(outcomes[3], ValueError)
    assert str(outcomes[3]) == "no 3"
    assert outcomes[4] == 8


async def test_per_loop_makes_one_value_for_each_event_loop() -> None:
    made: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    value = per_loop(make)
    here = value()
    assert value() is here
    elsewhere = await asyncio.to_thread(asyncio.run, _value_on_a_new_loop(value))
    assert elsewhere is not here
    assert len(made) == 2


async def _value_on_a_new_loop(value: Callable[[], object]) -> object:
    return value()

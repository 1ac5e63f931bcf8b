"""Calls made once for the items that arrive together (`Batched`), in the pool of threads
that websockets' database calls run in (`connect_db`), and what belongs to an event loop
(`per_loop`)."""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async


def connect_db(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """`func` run for a socket's connect or close (or a room hub's reads and presence), in a
    thread of a pool, each thread with its own database connection: Channels'
    database_sync_to_async runs every call of the process on one thread, so that in a
    reconnect storm each connect waited for all the others' reads and writes, past daphne's
    handshake timeout, and the clients' retries made it worse."""
    run: Callable[..., Awaitable[Any]] = database_sync_to_async(func, thread_sensitive=False)
    return run


class Batched[T, R]:
    """`func(items)` for the items added while the call before was under way, all in one
    call (`most` items at most), in the connect pool (connect_db), or on the event loop for
    a coroutine function: the joins, or the leaves, of a room's connections that come at
    once (a reconnect storm) are one statement, not one each, each with a thread's hop and a
    health check; their rate limits' counts one command. add() returns what the call that
    took its item returned, or raises what it raised, once it is done; for a func that
    returns one outcome per item, in order, add_one() returns its item's (raises it if it
    is an exception)."""

    def __init__(
        self, func: Callable[[list[T]], R] | Callable[[list[T]], Awaitable[R]], most: int = 1000
    ) -> None:
        self.call: Callable[[list[T]], Awaitable[R]] = (
            func if inspect.iscoroutinefunction(func) else connect_db(func)
        )
        self.most = most
        # The calls to make, in order: each with its items and the future of its outcome.
        self.waiting: list[tuple[list[T], asyncio.Future[R]]] = []
        self.drainer: asyncio.Task[None] | None = None

    async def add(self, item: T) -> R:
        _, done = self.put(item)
        return await asyncio.shield(done)

    async def add_one(self, item: T) -> Any:
        index, done = self.put(item)
        outcomes: Any = await asyncio.shield(done)
        outcome = outcomes[index]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def put(self, item: T) -> tuple[int, asyncio.Future[R]]:
        """The item in the next call: its place among the call's items, the call's future."""
        if not self.waiting or len(self.waiting[-1][0]) >= self.most:
            done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            # Retrieved here, so that a call whose waiters were cancelled logs nothing.
            done.add_done_callback(lambda future: future.cancelled() or future.exception())
            self.waiting.append(([], done))
        items, done = self.waiting[-1]
        items.append(item)
        if self.drainer is None:
            self.drainer = asyncio.create_task(self.drain())
        return len(items) - 1, done

    async def drain(self) -> None:
        done: asyncio.Future[R] | None = None
        try:
            await asyncio.sleep(0)  # the items added in this turn of the loop come along
            while self.waiting:
                # Taken out first: what is added meanwhile goes in the next call.
                items, done = self.waiting.pop(0)
                try:
                    result = await self.call(items)
                except Exception as error:
                    done.set_exception(error)
                else:
                    done.set_result(result)
        finally:
            # Cancelled (the loop is stopping): no waiter is left waiting.
            for unanswered in [done, *(later for _, later in self.waiting)]:
                if unanswered is not None and not unanswered.done():
                    unanswered.cancel()
            self.waiting.clear()
            self.drainer = None


def per_loop[V](make: Callable[[], V]) -> Callable[[], V]:
    """A function returning make()'s value for the running event loop, made there on its
    first use: what holds futures and tasks (a Batched) belongs to the loop that runs them."""
    values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, V] = weakref.WeakKeyDictionary()

    def value() -> V:
        loop = asyncio.get_running_loop()
        if loop not in values:
            values[loop] = make()
        return values[loop]

    return value

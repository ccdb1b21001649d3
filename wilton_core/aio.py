"""`within`: await something until a deadline — what `asyncio.timeout_at` does, at a third of the cost.

The request path awaits under a deadline several times per request (the body read, each upstream
call); `asyncio.timeout_at` builds a context object and reschedules a handle each time. Here it is
one timer handle that cancels the task, and an `uncancel` when it was ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["within"]

T = TypeVar("T")


async def within(aw: Awaitable[T], at: float) -> T:
    """`await aw`, or TimeoutError once the running loop's clock reaches `at` (then `aw` is cancelled).

    A cancellation from anyone else still propagates as CancelledError."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None, "within() needs a task"
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    cancelling = task.cancelling()
    handle = loop.call_at(at, expire)
    try:
        return await aw
    except asyncio.CancelledError:
        if fired and task.uncancel() <= cancelling:
            raise TimeoutError from None
        raise
    finally:
        handle.cancel()

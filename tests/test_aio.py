"""aio.within: the request path's cheap deadline (body read, every upstream call)."""

from __future__ import annotations

import asyncio

import pytest

from wilton_core.aio import within


async def test_returns_the_result_before_the_deadline() -> None:
    async def quick() -> int:
        await asyncio.sleep(0)
        return 7

    assert await within(quick(), asyncio.get_running_loop().time() + 5.0) == 7


async def test_times_out_and_cancels_the_awaitable() -> None:
    cancelled = asyncio.Event()

    async def stall() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        await within(stall(), asyncio.get_running_loop().time() + 0.01)
    assert cancelled.is_set()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # our cancel was taken back: the task goes on


async def test_a_past_deadline_times_out_at_once() -> None:
    with pytest.raises(TimeoutError):
        await within(asyncio.sleep(30), asyncio.get_running_loop().time() - 1.0)


async def test_someone_elses_cancel_is_not_a_timeout() -> None:
    async def inner() -> None:
        await within(asyncio.sleep(30), asyncio.get_running_loop().time() + 30.0)

    t = asyncio.ensure_future(inner())
    await asyncio.sleep(0.01)
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t


async def test_the_timer_is_gone_after_success() -> None:
    loop = asyncio.get_running_loop()
    await within(asyncio.sleep(0), loop.time() + 0.01)
    await asyncio.sleep(0.03)  # had the handle survived, it would cancel this task now
    assert not asyncio.current_task().cancelled()  # type: ignore[union-attr]

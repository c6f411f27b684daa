"""Admission: bounded concurrency, a bounded queue with a deadline, exact about cancellation."""

import asyncio
from collections.abc import Callable

import pytest

from switchyard_common.errors import OverloadedError
from switchyard_model_worker.admission import Admission


async def until(check: Callable[[], bool], rounds: int = 1000) -> None:
    """Let other tasks run until ``check`` holds (no wall-clock waiting)."""
    for _ in range(rounds):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_admits_up_to_capacity_then_queues_in_order() -> None:
    adm = Admission(capacity=1, max_queue=2, queue_timeout=5)
    order: list[int] = []
    gate = asyncio.Event()

    async def job(i: int) -> None:
        async with adm.slot():
            order.append(i)
            await gate.wait()

    tasks = [asyncio.create_task(job(i)) for i in range(3)]
    await until(lambda: (adm.in_flight, adm.queued) == (1, 2))
    assert order == [0]
    gate.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert (adm.in_flight, adm.queued) == (0, 0)


async def test_full_queue_answers_429_at_once() -> None:
    adm = Admission(capacity=1, max_queue=0, queue_timeout=5)
    async with adm.slot():
        with pytest.raises(OverloadedError) as info:
            async with adm.slot():
                pass
    assert info.value.status_code == 429
    assert info.value.headers["retry-after"] == "1"


async def test_queue_deadline_gives_503_and_frees_the_queue_place() -> None:
    adm = Admission(capacity=1, max_queue=1, queue_timeout=0.05)
    async with adm.slot():
        with pytest.raises(OverloadedError) as info:
            async with adm.slot():
                pass
        assert adm.queued == 0
    assert info.value.status_code == 503
    assert adm.in_flight == 0


async def test_cancelled_waiter_releases_its_place_and_slot_moves_on() -> None:
    adm = Admission(capacity=1, max_queue=2, queue_timeout=5)
    release = asyncio.Event()

    async def holder() -> None:
        async with adm.slot():
            await release.wait()

    async def waiter() -> str:
        async with adm.slot():
            return "ran"

    h = asyncio.create_task(holder())
    await until(lambda: adm.in_flight == 1)
    cancelled = asyncio.create_task(waiter())
    second = asyncio.create_task(waiter())
    await until(lambda: adm.queued == 2)
    cancelled.cancel()
    await until(lambda: cancelled.done())
    assert cancelled.cancelled()
    assert (adm.in_flight, adm.queued) == (1, 1)
    release.set()
    assert await second == "ran"
    await h
    assert (adm.in_flight, adm.queued) == (0, 0)


async def test_closed_admission_refuses_new_work() -> None:
    adm = Admission(capacity=2, max_queue=2, queue_timeout=1)
    adm.close()
    with pytest.raises(OverloadedError):
        async with adm.slot():
            pass

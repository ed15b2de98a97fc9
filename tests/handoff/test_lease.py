"""The lease that keeps a background job (relay, queue board, surveys, the Rasa bridge) in one process at a time."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from handoff.lease import Lease, run_periodically


async def test_a_process_that_lost_its_lease_neither_extends_nor_frees_its_successors(redis: aioredis.Redis) -> None:
    first = Lease(redis, "zabota:test:lease", ttl=10)
    second = Lease(redis, "zabota:test:lease", ttl=10)
    assert await first.hold()
    assert not await second.hold()  # one holder at a time
    await redis.delete("zabota:test:lease")  # the first paused past its lease: it expired
    assert await second.hold()
    assert not await first.hold()  # back from its pause, it does not take the lease back
    await first.release()
    assert await redis.get("zabota:test:lease") == second.owner  # nor free it
    await second.release()
    assert await redis.get("zabota:test:lease") is None


async def test_a_pass_that_fails_does_not_stop_the_job(redis: aioredis.Redis) -> None:
    passes = 0
    stop = asyncio.Event()

    async def work() -> None:
        nonlocal passes
        passes += 1
        if passes == 1:
            raise ConnectionError("the channel is out of reach")
        if passes == 2:
            raise ValueError("a bug in one pass")
        stop.set()

    lease = Lease(redis, "zabota:test:job", ttl=5)
    await asyncio.wait_for(run_periodically("test job", work, lease, stop, tick=0.01), timeout=5)
    assert passes == 3

"""One process at a time: a lease in Redis for the background jobs that must not run twice.

The holder renews the lease on every pass; if its process dies, the lease expires and another process takes the
job over. Renewal and release check the owner atomically, so a process that lost its lease (a long pause, a
network split) never extends or deletes its successor's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["Lease", "run_periodically"]

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    """``await lease.hold()`` is True while this process holds ``key``; call it at least every ``ttl`` seconds."""

    def __init__(self, redis: aioredis.Redis, key: str, ttl: float, *, owner: str = "") -> None:
        self.key = key
        self.ttl_ms = max(1, int(ttl * 1000))
        self.owner = owner or f"{os.getpid()}-{secrets.token_hex(4)}"
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def hold(self) -> bool:
        return bool(await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.owner])


async def run_periodically(
    name: str,
    work: Callable[[], Awaitable[object]],
    lease: Lease,
    stop: asyncio.Event,
    tick: float,
    *,
    expected: tuple[type[Exception], ...] = (),
) -> None:
    """``work()`` every ``tick`` seconds in the process holding ``lease``, until ``stop``; one bad pass (Redis or a
    channel out of reach, the ``expected`` errors of the work, a bug) is logged and the next pass tries again."""
    passing: tuple[type[Exception], ...] = (OSError, RedisError, *expected)
    while not stop.is_set():
        try:
            if await lease.hold():
                await work()
        except passing:
            log.warning("%s pass failed; next pass in %s s", name, tick, exc_info=True)
        except Exception:
            log.exception("%s pass failed unexpectedly; next pass in %s s", name, tick)
        try:
            await asyncio.wait_for(stop.wait(), tick)
        except TimeoutError:
            pass

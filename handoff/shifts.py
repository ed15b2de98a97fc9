"""Who is on shift: the agents new tickets are announced to, given to by auto-assignment and counted in wait
estimates. An agent starts a shift with ``/online`` or the workplace's switch and ends it with ``/offline``;
what he still holds when he leaves goes back to the queue (``AgentWorkspace.go_offline``)."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio as aioredis

from handoff import keys

__all__ = ["Shifts"]


class Shifts:
    """Agents on shift, in Redis (shared by every process), each with the moment his shift began."""

    def __init__(self, redis: aioredis.Redis, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock

    async def begin(self, agent_id: int) -> None:
        await self._redis.hset(keys.ONLINE, str(agent_id), str(self._clock()))

    async def end(self, agent_id: int) -> None:
        await self._redis.hdel(keys.ONLINE, str(agent_id))

    async def on_shift(self) -> dict[int, float]:
        """Agents on shift, each with when his shift began."""
        return {int(k): float(v) for k, v in (await self._redis.hgetall(keys.ONLINE)).items()}

    async def is_on(self, agent_id: int) -> bool:
        return bool(await self._redis.hexists(keys.ONLINE, str(agent_id)))

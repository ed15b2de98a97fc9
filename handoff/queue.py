"""The queue of waiting tickets: ordered by priority, then by how long each has waited; a ticket's place in it,
the longest wait, and how long a customer at a given place is likely to wait.

One Redis sorted set shared by every process. A ticket's score is its waiting-since time, plus a step larger
than any time for the ordinary level, so urgent tickets (frustrated or repeat customers) come first and each
level is first come, first served. The desk (``handoff.desk``) adds and removes tickets as they are opened,
taken, released and closed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import redis.asyncio as aioredis

from bot.core.redis_values import texts
from handoff import keys
from handoff.shifts import Shifts
from handoff.tickets import Ticket

__all__ = ["TicketQueue"]

_PRIORITY_STEP = 1e12  # a priority level outweighs any waiting time


class TicketQueue:
    """Waiting tickets in order, in Redis."""

    def __init__(
        self,
        redis: aioredis.Redis,
        shifts: Shifts,
        *,
        default_wait: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._shifts = shifts
        self.default_wait = default_wait
        self._clock = clock

    @staticmethod
    def score(ticket: Ticket) -> float:
        """The ticket's order in the queue: urgent before ordinary, then the longest waiting first."""
        return (1 - min(ticket.priority, 1)) * _PRIORITY_STEP + ticket.waiting_since

    async def head(self, limit: int = 50) -> list[str]:
        """The ids of the next ``limit`` tickets to be taken, the next first."""
        return texts(await self._redis.zrange(keys.QUEUE, 0, limit - 1))

    async def position(self, ticket_id: str) -> int | None:
        """1 for the next ticket to be taken; None when not waiting."""
        rank = await self._redis.zrank(keys.QUEUE, ticket_id)
        return None if rank is None else int(rank) + 1  # type: ignore[arg-type]  # an int for a member

    async def length(self) -> int:
        return int(await self._redis.zcard(keys.QUEUE))

    async def longest_wait(self) -> float:
        """Seconds the longest-waiting ticket has waited (0 with an empty queue): the first of each priority level
        (a level is ordered by waiting time), read from the queue's scores alone."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(keys.QUEUE, "-inf", f"({_PRIORITY_STEP}", start=0, num=1, withscores=True)
            pipe.zrangebyscore(keys.QUEUE, _PRIORITY_STEP, "+inf", start=0, num=1, withscores=True)
            urgent, others = await pipe.execute()
        since = [float(score) for _, score in urgent] + [float(score) - _PRIORITY_STEP for _, score in others]
        return max(0.0, self._clock() - min(since)) if since else 0.0

    async def estimate_wait(self, position: int) -> float:
        """Seconds a ticket at ``position`` is likely to wait, from recent waiting times and the agents on shift."""
        recent = [float(x) for x in await self._redis.lrange(keys.WAITS, 0, 19)]
        typical = statistics.median(recent) if len(recent) >= 3 else self.default_wait
        agents = max(1, len(await self._shifts.on_shift()))
        return max(60.0, typical * max(1, position) / agents)

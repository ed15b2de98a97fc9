"""Recording what the knowledge base could not answer: a Redis stream the admins' /gaps reads.

A question counts as a gap when the bot handed it to a person, could only offer a choice, or its answer
got "no, it did not help".
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio as aioredis

from bot import keys
from kb_index.gaps import Gap

__all__ = ["GapLog"]


class GapLog:
    def __init__(self, redis: aioredis.Redis, *, retention_days: int = 90, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._retention = retention_days * 86400
        self._clock = clock

    async def record(self, gap: Gap) -> None:
        now = self._clock()
        await self._redis.xadd(
            keys.UNANSWERED,
            {"q": gap.question, "r": gap.reason, "l": gap.lang, "a": gap.closest_article, "c": f"{gap.confidence:.4f}"},
            minid=f"{int((now - self._retention) * 1000)}-0",
            approximate=True,
        )

    async def since(self, days: float) -> list[Gap]:
        start = f"{int((self._clock() - days * 86400) * 1000)}-0"
        entries = await self._redis.xrange(keys.UNANSWERED, min=start, max="+")
        return [
            Gap(question=f.get("q", ""), reason=f.get("r", ""), lang=f.get("l", ""), closest_article=f.get("a", ""),
                confidence=float(f.get("c", 0) or 0))
            for _, f in entries
        ]

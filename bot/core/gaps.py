"""Recording what the knowledge base could not answer: a Redis stream the admins' /gaps reads.

A question counts as a gap when the bot handed it to a person, could only offer a choice, or its answer
got "no, it did not help". While an update is handled, its gap is recorded once: handled again after a
crash, it does not count the same question twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio as aioredis

from bot.core import keys
from bot.core.handling import current as current_handling
from bot.core.redis_values import fields_of, text_map
from kb_index.gaps import Gap

__all__ = ["GapLog"]

# KEYS: the stream, the update's steps; ARGV: step, steps' ttl, oldest id kept, then the fields (name, value, ...).
_RECORD_ONCE = """
if redis.call('HSETNX', KEYS[2], ARGV[1], '1') == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[3], '*', unpack(ARGV, 4))
return 1
"""


class GapLog:
    def __init__(self, redis: aioredis.Redis, *, retention_days: int = 90, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._retention = retention_days * 86400
        self._clock = clock
        self._record_once = redis.register_script(_RECORD_ONCE)

    async def record(self, gap: Gap) -> None:
        fields = {"q": gap.question, "r": gap.reason, "l": gap.lang, "a": gap.closest_article,
                  "c": f"{gap.confidence:.4f}"}
        oldest = f"{int((self._clock() - self._retention) * 1000)}-0"
        update = current_handling()
        if update is None:
            await self._redis.xadd(keys.UNANSWERED, fields_of(fields), minid=oldest, approximate=True)
            return
        flat = [part for pair in fields.items() for part in pair]
        await self._record_once(
            keys=[keys.UNANSWERED, update.key], args=[update.step("gap"), update.ttl, oldest, *flat]
        )

    async def since(self, days: float) -> list[Gap]:
        start = f"{int((self._clock() - days * 86400) * 1000)}-0"
        entries = [text_map(f) for _, f in await self._redis.xrange(keys.UNANSWERED, min=start, max="+") or ()]
        return [
            Gap(question=f.get("q", ""), reason=f.get("r", ""), lang=f.get("l", ""), closest_article=f.get("a", ""),
                confidence=float(f.get("c") or 0))
            for f in entries
        ]

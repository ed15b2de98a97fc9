"""The bot's own answers and what became of them: its self-service resolution rate, overall and by article.

An answer counts as **resolving** the customer's question unless he said it did not help or was handed to a
person within a day of it; "confirmed" counts the answers he said helped. (An answer left without a word is
counted as resolving: most customers who got what they needed just leave; the confirmed share is the floor.)

Each answer is recorded once per search (a retried update records nothing twice) in a hash per UTC day; what became
of it in a second hash of the same day, so a report reads two hashes a day.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import redis.asyncio as aioredis

from bot.core import keys
from bot.core.channels import channel_of
from bot.core.redis_values import optional_text, text_map

__all__ = ["AnswerLedger", "AnswerOutcome", "AnswerRecord", "ResolutionFigures", "resolution_by_article"]

DAY = 86400.0


class AnswerOutcome(StrEnum):
    HELPFUL = "helpful"  # the customer said it helped
    NOT_HELPFUL = "not_helpful"  # he said it did not
    HANDED_OFF = "handed_off"  # he was handed to a person within a day of it


@dataclass(frozen=True)
class AnswerRecord:
    chat_id: int
    search_id: str
    article_id: str
    lang: str
    channel: str
    at: float
    outcome: str = ""

    @property
    def resolved(self) -> bool:
        return self.outcome not in (AnswerOutcome.NOT_HELPFUL, AnswerOutcome.HANDED_OFF)


@dataclass
class ResolutionFigures:
    answers: int = 0
    resolved: int = 0
    confirmed: int = 0
    not_helpful: int = 0
    handed_off: int = 0

    def add(self, record: AnswerRecord) -> None:
        self.answers += 1
        self.resolved += record.resolved
        self.confirmed += record.outcome == AnswerOutcome.HELPFUL
        self.not_helpful += record.outcome == AnswerOutcome.NOT_HELPFUL
        self.handed_off += record.outcome == AnswerOutcome.HANDED_OFF

    @property
    def rate(self) -> float | None:
        """The self-service resolution rate (None without answers)."""
        return self.resolved / self.answers if self.answers else None

    @property
    def confirmed_rate(self) -> float | None:
        return self.confirmed / self.answers if self.answers else None


def resolution_by_article(records: Iterable[AnswerRecord]) -> tuple[ResolutionFigures, dict[str, ResolutionFigures]]:
    overall = ResolutionFigures()
    by_article: dict[str, ResolutionFigures] = {}
    for record in records:
        overall.add(record)
        by_article.setdefault(record.article_id, ResolutionFigures()).add(record)
    return overall, by_article


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


class AnswerLedger:
    def __init__(
        self, redis: aioredis.Redis, *, retention_days: float = 400, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._retention = int(retention_days * DAY)
        self._clock = clock

    async def answered(self, chat_id: int, search_id: str, article_id: str, lang: str) -> None:
        """The bot answered with ``article_id`` (once per search, however often the update is handled)."""
        now = self._clock()
        day = _day(now)
        field = f"{chat_id}:{search_id}"
        record = {"article": article_id, "lang": lang, "channel": channel_of(chat_id).value, "at": now}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(keys.answers(day), field, json.dumps(record, separators=(",", ":")))
            pipe.expire(keys.answers(day), self._retention)
            pipe.set(keys.last_answer(chat_id), f"{day}|{field}|{now}", ex=int(DAY))
            await pipe.execute()

    async def feedback(self, chat_id: int, search_id: str, helpful: bool) -> None:
        """What the customer said about an answer; his last word about it counts."""
        field = f"{chat_id}:{search_id}"
        now = self._clock()
        for day in (_day(now), _day(now - DAY)):  # feedback comes within a day or not at all
            if await self._redis.hexists(keys.answers(day), field):
                outcome = AnswerOutcome.HELPFUL if helpful else AnswerOutcome.NOT_HELPFUL
                await self._set_outcome(day, field, outcome, replace=True)
                return

    async def handed_off(self, chat_id: int) -> None:
        """The customer was handed to a person: his answer of the last day (if any) did not resolve it, unless he
        had said it helped (then the hand-off is about something else)."""
        pointer = optional_text(await self._redis.get(keys.last_answer(chat_id)))
        if pointer:
            day, field, at = pointer.split("|")
            if self._clock() - float(at) <= DAY:
                await self._set_outcome(day, field, AnswerOutcome.HANDED_OFF, replace=False)

    async def _set_outcome(self, day: str, field: str, outcome: AnswerOutcome, *, replace: bool) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            if replace:
                pipe.hset(keys.answer_outcomes(day), field, outcome.value)
            else:
                pipe.hsetnx(keys.answer_outcomes(day), field, outcome.value)
            pipe.expire(keys.answer_outcomes(day), self._retention)
            await pipe.execute()

    async def answers(self, since: float, until: float) -> list[AnswerRecord]:
        """Every answer given from ``since`` to ``until``, with what became of it."""
        days = []
        at = since
        while _day(at) <= _day(until):
            days.append(_day(at))
            at += DAY
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(keys.answers(day))
                pipe.hgetall(keys.answer_outcomes(day))
            raw = await pipe.execute()
        records = []
        for index in range(0, len(raw), 2):
            outcomes = text_map(raw[index + 1])
            for field, value in text_map(raw[index]).items():
                data = json.loads(value)
                if not since <= float(data["at"]) <= until:
                    continue
                chat, search_id = field.split(":", 1)
                records.append(AnswerRecord(int(chat), search_id, str(data["article"]), str(data.get("lang", "")),
                                            str(data.get("channel", "")), float(data["at"]), outcomes.get(field, "")))
        return records

"""The bot's self-service resolution rate: what became of each answer, on a real Redis."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.core.answers import AnswerLedger, AnswerOutcome, resolution_by_article
from tests.conftest import Clock


async def test_each_answer_counts_once_with_what_became_of_it(redis: aioredis.Redis) -> None:
    clock = Clock()
    ledger = AnswerLedger(redis, clock=clock)
    start = clock.now
    await ledger.answered(1, "s1", "cancel-order", "ru")
    await ledger.answered(1, "s1", "cancel-order", "ru")  # the same update handled again after a crash
    await ledger.feedback(1, "s1", helpful=True)
    await ledger.handed_off(1)  # later he wants a person about something else: the answer still helped

    await ledger.answered(2, "s1", "cancel-order", "ru")
    await ledger.feedback(2, "s1", helpful=False)

    await ledger.answered(3, "s7", "delivery-time", "uk")
    clock.now += 3600
    await ledger.handed_off(3)  # no word about the answer, then "a person, please"

    await ledger.answered(4, "s9", "delivery-time", "en")  # answered, and the customer simply left

    clock.now += 2 * 86400
    await ledger.answered(5, "s2", "delivery-time", "ru")  # another day
    await ledger.handed_off(6)  # a customer the bot never answered: nothing to mark

    records = await ledger.answers(start - 1, clock.now)
    assert sorted((r.chat_id, r.outcome) for r in records) == [
        (1, AnswerOutcome.HELPFUL), (2, AnswerOutcome.NOT_HELPFUL), (3, AnswerOutcome.HANDED_OFF), (4, ""), (5, ""),
    ]
    overall, by_article = resolution_by_article(records)
    assert (overall.answers, overall.resolved, overall.confirmed) == (5, 3, 1)
    assert overall.rate == 0.6 and overall.confirmed_rate == 0.2
    assert (by_article["cancel-order"].answers, by_article["cancel-order"].rate) == (2, 0.5)
    assert (by_article["delivery-time"].handed_off, by_article["delivery-time"].resolved) == (1, 2)
    assert {r.channel for r in records} == {"telegram"}

    # A period sees only its own answers; a hand-off more than a day after the answer says nothing about it.
    assert [r.chat_id for r in await ledger.answers(clock.now - 60, clock.now)] == [5]
    clock.now += 86400 + 1
    await ledger.handed_off(5)
    assert [r.outcome for r in await ledger.answers(clock.now - 3 * 86400, clock.now)] == [""]

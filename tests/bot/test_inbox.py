"""The durable inbox on a real Redis: one chat's updates in order across processes; the webhook stores first;
an update handled again repeats none of its writes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from aiogram import Bot, Dispatcher
from aiogram.types import Chat, Message, Update, User
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.core.conversation import ConversationLog, ConversationState, DialogStates, ShownSearch, Turn
from bot.core.gaps import GapLog
from bot.core.handling import handling
from bot.telegram import keys
from bot.telegram.inbox import Inbox, webhook_handler
from kb_index.gaps import Gap
from tests.bot.test_scale_out import free_port

TOKEN = "123456:test-token"


def message_update(update_id: int, chat_id: int, text: str) -> Update:
    user = User(id=chat_id, is_bot=False, first_name="Анна")
    message = Message(
        message_id=update_id, date=datetime.now(UTC), chat=Chat(id=chat_id, type="private"), from_user=user, text=text
    )
    return Update(update_id=update_id, message=message)


async def test_one_chats_updates_are_handled_in_order_whichever_process_holds_them(redis: aioredis.Redis) -> None:
    handled: list[tuple[int, str]] = []
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def record(message: Message) -> None:
        # The first message of each chat takes longest: without the order kept, the second would overtake it.
        await asyncio.sleep(0.3 if message.text and message.text.endswith(" 1") else 0.01)
        handled.append((message.chat.id, message.text or ""))

    bot = Bot(TOKEN)
    first = Inbox(redis, bot.id, consumer="process-1", concurrency=2, block=0.05)
    second = Inbox(redis, bot.id, consumer="process-2", concurrency=2, block=0.05)
    updates = [message_update(100 + n, chat, f"chat {chat} message {n // 2 + 1}") for n, chat in
               enumerate([1, 2] * 4)]
    for update in updates:
        assert await first.put([update]) == 1
    stop = asyncio.Event()
    serving = [asyncio.create_task(inbox.serve(bot, dispatcher, stop)) for inbox in (first, second)]
    try:
        for _ in range(200):
            if len(handled) == len(updates):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*serving)
        await bot.session.close()

    for chat in (1, 2):
        assert [text for c, text in handled if c == chat] == [f"chat {chat} message {n}" for n in range(1, 5)]
    assert len(handled) == len(updates)  # each once
    assert await redis.xlen(first.stream) == 0  # and gone from the inbox


async def test_the_webhook_answers_telegram_only_once_the_update_is_stored(redis: aioredis.Redis) -> None:
    bot = Bot(TOKEN)
    inbox = Inbox(redis, bot.id)
    app = web.Application()
    app.router.add_post("/hook", webhook_handler(bot, inbox, "s3cret"))
    update = message_update(7, 42, "Где мой заказ?").model_dump(mode="json", exclude_unset=True)
    async with TestClient(TestServer(app)) as client:
        refused = await client.post("/hook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
        assert refused.status == 401
        assert await redis.xlen(inbox.stream) == 0

        nonsense = await client.post("/hook", json={"hello": 1}, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"})
        assert nonsense.status == 400

        for _ in range(2):  # Telegram delivers it again: stored once
            stored = await client.post("/hook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"})
            assert stored.status == 200
        entries = await redis.xrange(inbox.stream)
        assert [fields["update_id"] for _id, fields in entries] == ["7"]
        assert inbox.duplicates == 1

    # Redis out of reach: Telegram is told to try again, not that the update arrived.
    gone = aioredis.Redis(port=free_port(), decode_responses=True, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    app = web.Application()
    app.router.add_post("/hook", webhook_handler(bot, Inbox(gone, bot.id), "s3cret"))
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/hook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"})
        assert response.status == 503
    await gone.aclose()
    await bot.session.close()


@pytest.mark.slow  # waits out heartbeats
async def test_what_a_dead_process_held_is_taken_over_and_a_live_ones_long_update_is_not(
    redis: aioredis.Redis,
) -> None:
    handled: list[str] = []
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def record(message: Message) -> None:
        await asyncio.sleep(2.5 if message.text == "/reindex" else 0.01)  # longer than a heartbeat lives
        handled.append(message.text or "")

    bot = Bot(TOKEN)
    quick = {"alive_ttl": 0.5, "check_every": 0.1, "block": 0.05}
    live = Inbox(redis, bot.id, consumer="live", **quick)
    other = Inbox(redis, bot.id, consumer="other", **quick)
    # A process read two updates and died before handling them: no heartbeat, entries pending under its name.
    await live.put([message_update(2, 20, "Где мой заказ?"), message_update(3, 30, "Как вернуть товар?")])
    await redis.xgroup_create(live.stream, "handlers", id="0")
    await redis.xreadgroup("handlers", "dead", {live.stream: ">"}, count=2)
    await live.put([message_update(1, 10, "/reindex")])
    stop = asyncio.Event()
    serving = [asyncio.create_task(live.serve(bot, dispatcher, stop))]
    await asyncio.sleep(1.3)  # "live" holds the /reindex (and, idle for a second now, the dead one's entries)
    serving.append(asyncio.create_task(other.serve(bot, dispatcher, stop)))
    try:
        for _ in range(100):
            if len(handled) >= 3:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # a second /reindex, had it been taken from "live", would be here by now
    finally:
        stop.set()
        await asyncio.gather(*serving)
        await bot.session.close()

    assert sorted(handled) == sorted(["/reindex", "Где мой заказ?", "Как вернуть товар?"])
    assert live.taken_over + other.taken_over == 2
    assert await redis.xlen(live.stream) == 0
    assert "dead" not in [c["name"] for c in await redis.xinfo_consumers(live.stream, "handlers")]


async def test_an_update_handled_again_records_its_gap_and_its_turns_once(redis: aioredis.Redis) -> None:
    """After a crash the update is handled again from the start: what its first try wrote is not written twice."""
    gaps = GapLog(redis)
    log = ConversationLog(redis, timedelta(days=1))
    gap = Gap(question="вы берёте на работу курьеров?", reason="handoff", lang="ru", closest_article="courier",
              confidence=0.12)
    for _attempt in range(2):  # the first try, and the same update handled again
        with handling(keys.update_steps(1, 77), ttl=3600):
            await log.append(5, Turn("customer", "text", gap.question, "ru"))
            await gaps.record(gap)
    assert [g.question for g in await gaps.since(1)] == [gap.question]
    assert [t.text for t in await log.recent(5)] == [gap.question]

    with handling(keys.update_steps(1, 78), ttl=3600):  # the same words in a new message count again
        await gaps.record(gap)
    await gaps.record(gap)  # and outside any update (a command line, a test)
    assert len(await gaps.since(1)) == 3


async def test_an_update_handled_again_starts_from_the_state_before_it_and_keeps_its_search_ids(
    redis: aioredis.Redis,
) -> None:
    states = DialogStates(redis, timedelta(days=1))
    await states.save(5, ConversationState(lang="ru", negative_streak=1))
    search = ShownSearch(question="не помогло", lang="ru", decision="clarify", confidence=0.3, matches=[])
    seen = []
    for _attempt in range(2):  # the first try, and the same update handled again after a crash
        with handling(keys.update_steps(1, 79), ttl=3600):
            state = await states.load(5, before_this_update=True)
            state.negative_streak += 1  # "no, it did not help" once more
            seen.append((state.negative_streak, await states.remember_search(5, search)))
            await states.save(5, state)
    assert seen[0] == seen[1]  # the same streak, the same search id the buttons already sent point to
    assert (await states.load(5)).negative_streak == 2  # counted once

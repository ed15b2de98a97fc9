"""Outgoing messages that respect Telegram's limits, and retry when Telegram asks to wait.

A request middleware of the bot's session: every sending method waits for a token from its chat's bucket
(about one message a second per chat with a short burst, twenty a minute into a group) and from the bot's
bucket (thirty a second in all); a 429 answer is retried after its ``retry_after``. A 403 (the user blocked
the bot) is not retried: it is passed up for the caller to handle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import Response, TelegramMethod
from pydantic import TypeAdapter
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.core.handling import Handling
from bot.core.handling import current as current_handling
from bot.telegram import keys

__all__ = ["SENDING_METHODS", "OutgoingLimits", "SendOnce", "SharedPace", "TelegramPacer"]

log = logging.getLogger(__name__)

# Methods that put a message into a chat (edits count too: Telegram limits them the same way).
SENDING_METHODS = {
    "sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendSticker", "sendLocation", "sendVideo",
    "sendAudio", "sendAnimation", "sendMediaGroup", "copyMessage", "forwardMessage", "editMessageText",
    "editMessageReplyMarkup", "editMessageCaption",
}


@dataclass(frozen=True)
class OutgoingLimits:
    per_chat_per_second: float = 1.0
    per_chat_burst: int = 3
    per_group_per_minute: int = 20
    per_bot_per_second: float = 30.0
    max_retries: int = 10  # a 429 must not cost a customer his answer: Telegram's waits are seconds


class _Bucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def wait_time(self, now: float) -> float:
        """Seconds until a token is free; takes it if it is free now."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


# The bot-wide pace shared by every process of the bot: a message may go when the bot's next slot has come
# (slots at least 1/rate apart, no burst); it takes the slot then, or learns how long to wait. Redis's clock, so
# processes on several hosts agree. KEYS: the pace key; ARGV: microseconds between slots. Returns microseconds
# to wait (0: the slot is taken).
_TAKE_SLOT = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local next_slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_slot > now_us then return next_slot - now_us end
redis.call('SET', KEYS[1], string.format('%d', now_us + tonumber(ARGV[1])), 'PX', 60000)
return 0
"""


class SharedPace:
    """Telegram's 30 messages a second are the bot's, not each process's: several processes share them here."""

    def __init__(self, redis: Redis, rate: float) -> None:
        self._take = redis.register_script(_TAKE_SLOT)
        self._interval_us = int(1_000_000 / rate)
        self._turn = asyncio.Lock()  # one message of this process asks at a time, the others queue behind it

    async def acquire(self, bot_id: int, sleep: Callable[[float], Awaitable[Any]]) -> None:
        """Wait for the bot's next slot and take it."""
        async with self._turn:
            while True:
                wait = int(await self._take(keys=[keys.outgoing_pace(bot_id)], args=[self._interval_us]))
                if wait <= 0:
                    return
                await sleep(wait / 1_000_000)


class TelegramPacer(BaseRequestMiddleware):
    """Paces sending methods per chat and per bot, and retries after 429.

    The bot-wide pace is kept in Redis when ``shared`` is given (every process of the bot shares it), else in
    this process; if Redis cannot be reached for it, this process paces alone meanwhile.
    """

    def __init__(
        self,
        limits: OutgoingLimits = OutgoingLimits(),
        *,
        shared: SharedPace | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.limits = limits
        self._shared = shared
        self._clock = clock
        self._sleep = sleep
        self._chats: dict[int | str, _Bucket] = {}
        # No burst bot-wide: Telegram counts any one second, so a full bucket on top of the rate would exceed it.
        self._bot = _Bucket(limits.per_bot_per_second, 1.0, clock())
        self._lock = asyncio.Lock()
        self.retries = 0  # 429 answers retried, for metrics and tests

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Any,
        method: TelegramMethod[Any],
    ) -> Response[Any]:
        if method.__api_method__ in SENDING_METHODS:
            await self._acquire(getattr(method, "chat_id", None), bot.id)
        for attempt in range(self.limits.max_retries + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt >= self.limits.max_retries:
                    raise
                self.retries += 1
                log.warning("Telegram asked to wait %s s before %s; retrying", exc.retry_after, method.__api_method__)
                await self._sleep(exc.retry_after)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _acquire(self, chat_id: int | str | None, bot_id: int) -> None:
        shared = self._shared is not None
        while True:
            async with self._lock:
                now = self._clock()
                wait = self._chat_bucket(chat_id, now).wait_time(now) if chat_id is not None else 0.0
                if wait == 0.0 and not shared:
                    wait = self._bot.wait_time(now)
                    if wait > 0:  # give the chat its token back; it waits for the bot-wide one
                        self._chat_bucket(chat_id, now).tokens += 1 if chat_id is not None else 0
                if wait == 0.0:
                    break
            await self._sleep(wait)
        if self._shared is None:
            return
        try:
            await self._shared.acquire(bot_id, self._sleep)
        except RedisError as error:
            log.warning("the shared pace is out of reach (%s); this process paces alone meanwhile", error)
            while True:
                async with self._lock:
                    wait = self._bot.wait_time(self._clock())
                if wait == 0.0:
                    return
                await self._sleep(wait)

    def _chat_bucket(self, chat_id: int | str, now: float) -> _Bucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if len(self._chats) > 50_000:
                self._chats = {k: b for k, b in self._chats.items() if b.tokens < b.capacity}
            is_group = isinstance(chat_id, str) or int(chat_id) < 0
            if is_group:
                bucket = _Bucket(self.limits.per_group_per_minute / 60, 3, now)
            else:
                bucket = _Bucket(self.limits.per_chat_per_second, self.limits.per_chat_burst, now)
            self._chats[chat_id] = bucket
        return bucket


class SendOnce(BaseRequestMiddleware):
    """While an update is handled, each message it sends is sent once, even if it is handled again.

    The n-th sending call of an update stores Telegram's answer under the update's steps (``bot.core.handling``);
    when a process died half-way and the update is handled again, the calls already made return the stored
    answer instead of sending again. Only a crash in the instant between Telegram's answer and the write to
    Redis can still send one message twice. Register it before the pacer: a skipped call costs no budget.
    """

    def __init__(self, redis: Redis, *, give_up_after: float = 120.0) -> None:
        self._redis = redis
        self.give_up_after = give_up_after
        self.skipped = 0  # calls not repeated, for tests

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Any,
        method: TelegramMethod[Any],
    ) -> Any:  # the method's result (a Message, True, ...): what the chain of request middlewares returns
        update = current_handling()
        if update is None or method.__api_method__ not in SENDING_METHODS:
            return await make_request(bot, method)
        step = update.step("send")
        stored = await self._redis.hget(update.key, step)
        if stored is not None:
            self.skipped += 1
            log.info("%s was sent before the update was handled again; not sent twice", method.__api_method__)
            return TypeAdapter(method.__returning__).validate_json(stored, context={"bot": bot})
        result = await make_request(bot, method)
        stored = TypeAdapter(method.__returning__).dump_json(result, fallback=lambda _: None)  # no client defaults
        await self._remember(update, step, stored)
        return result

    async def _remember(self, update: Handling, step: str, stored: bytes) -> None:
        """The message is in the customer's chat: its mark must reach Redis, even if Redis is away a while.

        Given up (and the update left to be handled again, this message with it) only after ``give_up_after``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.give_up_after
        pause = 0.2
        while True:
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    await pipe.hset(update.key, step, stored).expire(update.key, update.ttl).execute()
                return
            except (RedisConnectionError, RedisTimeoutError) as error:
                if loop.time() + pause > deadline:
                    raise
                if pause == 0.2:
                    log.warning("a message was sent but Redis is out of reach (%s); it is recorded once back", error)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

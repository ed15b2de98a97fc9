"""Dispatcher middlewares: each update handled once, and a customer's message flood answered once.

``UpdateOnce`` marks an update "processing" in Redis before it is handled and "done" after; a second delivery
of the same update (a webhook retry, a second process) waits while the mark says "processing" and is dropped
once it says "done". If the process handling it died, its "processing" mark expires and the waiting delivery
handles the update: nothing is done twice, and nothing is lost with a killed process.

``FloodControl`` counts a customer's messages in a short window; past the limit he gets one polite
"one moment" and the rest are only written to the conversation log, not answered one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update

from bot.core.conversation import ConversationLog, Turn
from bot.core.handling import handling
from bot.core.texts import Texts
from bot.telegram import keys

__all__ = ["FloodControl", "UpdateOnce", "update_chat_id"]

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def update_chat_id(update: Update) -> int | None:
    """The chat an update belongs to (for ordering), if any."""
    for event in (update.message, update.edited_message, update.channel_post, update.my_chat_member):
        if event is not None:
            return event.chat.id
    if update.callback_query is not None:
        message = update.callback_query.message
        return message.chat.id if message is not None else update.callback_query.from_user.id
    return None


class UpdateOnce(BaseMiddleware):
    """Outer middleware on updates: drop an update that was already handled (or is being handled)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        processing_ttl: int = 15,
        done_ttl: int = 26 * 3600,
        poll: float = 0.2,
    ) -> None:
        self._redis = redis
        self._processing_ttl = processing_ttl  # longer than any update takes to handle
        self._done_ttl = done_ttl  # Telegram keeps undelivered updates for 24 hours
        self._poll = poll
        self.duplicates = 0

    async def _claim(self, key: str) -> bool:
        """True when this delivery is to handle the update; False when another delivery has handled it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._processing_ttl * 2
        while True:
            if await self._redis.set(key, "processing", nx=True, ex=self._processing_ttl):
                return True
            if await self._redis.get(key) == "done":
                return False
            if loop.time() > deadline:
                return False
            await asyncio.sleep(self._poll)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        key = keys.update(data["bot"].id, event.update_id)
        if not await self._claim(key):
            self.duplicates += 1
            log.info("update %s was already handled; dropped", event.update_id)
            return None
        steps = keys.update_steps(data["bot"].id, event.update_id)
        try:
            with handling(steps, self._done_ttl):  # what it sends and writes, once (a retry skips what is done)
                result = await handler(event, data)
        except BaseException:
            await asyncio.shield(self._redis.delete(key))  # let a redelivery try again (even when cancelled)
            raise
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.set(key, "done", ex=self._done_ttl).delete(steps).execute()
        return result


class FloodControl(BaseMiddleware):
    """Outer middleware on customers' messages: at most ``limit`` answered per ``window`` seconds."""

    def __init__(
        self,
        redis: aioredis.Redis,
        conversation_log: ConversationLog,
        texts: Texts,
        *,
        limit: int = 6,
        window: int = 10,
        exempt: Callable[[int], Awaitable[bool]] | None = None,
    ) -> None:
        self._redis = redis
        self._log = conversation_log
        self._texts = texts
        self.limit = limit
        self.window = window
        self._exempt = exempt

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Message) or event.chat.type != "private" or event.from_user is None:
            return await handler(event, data)
        if self._exempt is not None and await self._exempt(event.from_user.id):
            return await handler(event, data)
        chat_id = event.chat.id
        async with self._redis.pipeline(transaction=True) as pipe:
            # The first message of a window starts its clock; INCR keeps the TTL (works on Redis 6 too).
            pipe.set(keys.flood(chat_id), 0, ex=self.window, nx=True)
            pipe.incr(keys.flood(chat_id))
            _, count = await pipe.execute()
        if int(count) <= self.limit:
            return await handler(event, data)
        lang = self._texts.for_code(event.from_user.language_code)
        await self._log.append(chat_id, Turn("customer", "flooded", event.text or event.caption or "", lang))
        if await self._redis.set(keys.flood_warned(chat_id), "1", nx=True, ex=self.window):
            await event.answer(self._texts.get(lang, "flood"))
        return None

"""The durable inbox: every Telegram update is in Redis before Telegram is told it arrived.

Long polling confirms updates to Telegram with the offset of the next ``getUpdates`` call. Handling updates
straight from the poll (as aiogram's own polling does) moves that offset on while the updates are still being
handled, so a process killed at that moment loses them: Telegram will not send them again, and no process has
them. Here the poll only *stores* what it fetched, in a Redis stream, and confirms to Telegram after that:

    getUpdates ─► Inbox.put (stream entry, once per update id) ─► next getUpdates confirms
                  Inbox.serve: XREADGROUP ─► dispatcher.feed_update ─► XACK + XDEL

An entry leaves the stream only once it has been handled. A process that starts takes over what a dead one
left pending (at once, then every ``claim_after`` seconds for entries nobody finished), so nothing fetched is
ever lost; ``UpdateOnce`` keeps a taken-over update that had in fact been handled from being handled twice.
One chat's updates are still handled in the order they came (``ChatSequencer``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from bot import keys

__all__ = ["Inbox", "poll_telegram"]

log = logging.getLogger(__name__)

GROUP = "handlers"

T = TypeVar("T")

# Store each update once, whatever how many times getUpdates or a webhook retry delivers it: a "seen" mark per
# update id (kept as long as Telegram keeps undelivered updates) and the stream entry, written together.
_PUT = """
local added = 0
for i = 2, #ARGV, 2 do
  if redis.call('SET', KEYS[1] .. ':seen:' .. ARGV[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[1], '*', 'update_id', ARGV[i], 'update', ARGV[i + 1])
    added = added + 1
  end
end
return added
"""


class Inbox:
    """A Redis stream of Telegram updates with one consumer group: any process may handle any entry."""

    def __init__(
        self,
        redis: aioredis.Redis,
        bot_id: int,
        *,
        consumer: str | None = None,
        claim_after: float = 60.0,
        concurrency: int = 64,
        seen_ttl: int = 26 * 3600,
        block: float = 1.0,
    ) -> None:
        self._redis = redis
        self.stream = keys.inbox(bot_id)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_after = claim_after  # longer than any update takes to handle
        self._concurrency = concurrency
        self._seen_ttl = seen_ttl  # Telegram keeps undelivered updates for 24 hours
        self._block_ms = int(block * 1000)
        self._put = redis.register_script(_PUT)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._in_hand: set[str] = set()  # entry ids being handled here (a long /reindex must not be taken over)
        self.duplicates = 0  # deliveries of an update already stored

    async def put(self, updates: Sequence[Update]) -> int:
        """Store the updates (each once); returns how many were new. Telegram may be told they arrived after."""
        if not updates:
            return 0
        args: list[Any] = [self._seen_ttl]
        for update in updates:
            args += [update.update_id, update.model_dump_json(exclude_unset=True)]
        added = int(await self._put(keys=[self.stream], args=args))
        self.duplicates += len(updates) - added
        if added < len(updates):
            log.info("%d update(s) delivered again were already in the inbox; dropped", len(updates) - added)
        return added

    async def serve(self, bot: Bot, dispatcher: Dispatcher, stop: asyncio.Event, **context: Any) -> None:
        """Handle stored updates until ``stop`` is set; those in hand when it is are finished first."""
        await self._ensure_group()
        slots = asyncio.Semaphore(self._concurrency)
        loop = asyncio.get_running_loop()
        # What a process that is gone left half done comes first, in the order it arrived.
        await self._take_over(bot, dispatcher, slots, context, min_idle_ms=0)
        next_claim = loop.time() + self.claim_after
        try:
            while not stop.is_set():
                try:
                    answer = await self._redis.xreadgroup(
                        GROUP, self.consumer, {self.stream: ">"}, count=self._concurrency, block=self._block_ms
                    )
                except ResponseError as error:
                    if "NOGROUP" not in str(error):
                        raise
                    await self._ensure_group()  # the stream was deleted (FLUSHDB): start it again
                    continue
                except RedisConnectionError as error:
                    log.warning("inbox out of reach (%s); trying again in 1 s", error)
                    await asyncio.sleep(1.0)
                    continue
                for _stream, entries in answer or ():
                    for entry_id, fields in entries:
                        await self._start(bot, dispatcher, slots, context, entry_id, fields)
                if loop.time() >= next_claim:
                    await self._take_over(bot, dispatcher, slots, context, min_idle_ms=int(self.claim_after * 1000))
                    next_claim = loop.time() + self.claim_after
        finally:
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def _take_over(
        self, bot: Bot, dispatcher: Dispatcher, slots: asyncio.Semaphore, context: dict[str, Any], *, min_idle_ms: int
    ) -> None:
        start = "0-0"
        while True:
            reply = await self._redis.xautoclaim(self.stream, GROUP, self.consumer, min_idle_ms, start, count=100)
            start, entries = reply[0], reply[1]
            for entry_id, fields in entries:
                if fields and entry_id not in self._in_hand:  # a deleted entry has no fields
                    log.warning("taking over update %s left unfinished", fields.get("update_id", "?"))
                    await self._start(bot, dispatcher, slots, context, entry_id, fields)
            if _text(start) == "0-0":
                return

    async def _start(
        self,
        bot: Bot,
        dispatcher: Dispatcher,
        slots: asyncio.Semaphore,
        context: dict[str, Any],
        entry_id: str,
        fields: dict[str, str],
    ) -> None:
        await slots.acquire()  # no more than ``concurrency`` updates in hand; the rest wait in the stream
        task = asyncio.create_task(self._handle(bot, dispatcher, context, entry_id, fields))
        self._in_flight.add(task)
        self._in_hand.add(entry_id)

        def done(finished: asyncio.Task[None]) -> None:
            self._in_flight.discard(finished)
            self._in_hand.discard(entry_id)
            slots.release()

        task.add_done_callback(done)

    async def _handle(
        self, bot: Bot, dispatcher: Dispatcher, context: dict[str, Any], entry_id: str, fields: dict[str, str]
    ) -> None:
        try:
            update = Update.model_validate(json.loads(fields["update"]), context={"bot": bot})
            response = await dispatcher.feed_update(bot, update, **context)
            if isinstance(response, TelegramMethod):
                await dispatcher.silent_call_request(bot=bot, result=response)
        except asyncio.CancelledError:
            raise  # stays pending: the next process to start handles it
        except RedisError as error:
            # Redis went away mid-update: the entry stays pending and is taken over again within ``claim_after``.
            log.warning("update %s interrupted (%s); it will be handled again", fields.get("update_id", "?"), error)
            return
        except Exception:
            # A bug, not a crash: handling it again would fail again. It is logged and let go, as Telegram would.
            log.exception("update %s could not be handled", fields.get("update_id", "?"))
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.xack(self.stream, GROUP, entry_id).xdel(self.stream, entry_id).execute()


async def poll_telegram(
    bot: Bot,
    inbox: Inbox,
    stop: asyncio.Event,
    *,
    timeout: int = 10,
    allowed_updates: list[str] | None = None,
) -> None:
    """Long polling that confirms an update to Telegram only once it is in the inbox."""
    offset: int | None = None
    backoff = 1.0
    while not stop.is_set():
        try:
            # A stop does not wait for the long poll: what it would have fetched is not confirmed, so it comes again.
            updates = await _unless_stopped(
                stop,
                bot.get_updates(
                    offset=offset, timeout=timeout, allowed_updates=allowed_updates, request_timeout=timeout + 10
                ),
            )
            if updates is None:
                return
            if updates:
                await inbox.put(updates)  # stored first: the next call's offset confirms them to Telegram
                offset = updates[-1].update_id + 1
            backoff = 1.0
        except TelegramRetryAfter as error:
            await _sleep_or_stop(stop, error.retry_after)
        except (TelegramNetworkError, TelegramServerError, RedisError) as error:
            # Telegram or Redis out of reach: nothing is confirmed until it is stored, so nothing is lost.
            log.warning("polling paused (%s); trying again in %.0f s", error, backoff)
            await _sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, 30.0)


async def _unless_stopped(stop: asyncio.Event, call: Awaitable[T]) -> T | None:
    work = asyncio.ensure_future(call)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not work.done():
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        return None
    return work.result()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


def _text(value: bytes | str | Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

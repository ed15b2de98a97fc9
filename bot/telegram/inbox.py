"""The durable inbox: every Telegram update is in Redis before Telegram is told it arrived.

Long polling confirms updates to Telegram with the offset of the next ``getUpdates`` call. Handling updates
straight from the poll (as aiogram's own polling does) moves that offset on while the updates are still being
handled, so a process killed at that moment loses them: Telegram will not send them again, and no process has
them. Here the poll only *stores* what it fetched, in a Redis stream, and confirms to Telegram after that:

    getUpdates ─► Inbox.put (stream entry, once per update id) ─► next getUpdates confirms
                  Inbox.serve: XREADGROUP ─► dispatcher.feed_update ─► XACK + XDEL

In webhook mode the webhook stores the update the same way and answers Telegram's call only after that
(``webhook_handler``); a process that cannot reach Redis answers 503 and Telegram delivers the update again.

An entry leaves the stream only once it has been handled. Each serving process keeps a heartbeat in Redis; a
live one takes over what a process without a heartbeat (killed, crashed, switched off) left pending, within
seconds, so nothing fetched is ever lost; ``UpdateOnce`` keeps a taken-over update that had in fact been
handled from being handled twice.

One chat's updates are handled in the order they came, whichever process holds them: each entry carries its
place in its chat (a counter raised as it is stored), and an entry waits until the one before it in the same
chat is done (its number is recorded as the entry leaves the stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from bot.telegram import keys
from bot.telegram.middlewares import update_chat_id

__all__ = ["Inbox", "poll_telegram", "webhook_handler"]

log = logging.getLogger(__name__)

GROUP = "handlers"

T = TypeVar("T")

# Store each update once, whatever how many times getUpdates or a webhook retry delivers it: a "seen" mark per
# update id (kept as long as Telegram keeps undelivered updates) and the stream entry, written together, the
# entry numbered in its chat. ARGV: ttl, then (update id, chat id or "", update JSON) for each update.
_PUT = """
local added = 0
for i = 2, #ARGV, 3 do
  if redis.call('SET', KEYS[1] .. ':seen:' .. ARGV[i], '1', 'NX', 'EX', ARGV[1]) then
    local chat = ARGV[i + 1]
    if chat == '' then
      redis.call('XADD', KEYS[1], '*', 'update_id', ARGV[i], 'update', ARGV[i + 2])
    else
      local last = KEYS[1] .. ':chat:' .. chat .. ':last'
      local seq = redis.call('INCR', last)
      redis.call('EXPIRE', last, ARGV[1])
      redis.call('XADD', KEYS[1], '*', 'update_id', ARGV[i], 'update', ARGV[i + 2], 'chat', chat, 'seq', seq)
    end
    added = added + 1
  end
end
return added
"""

# An entry leaves the stream, handled; its number becomes its chat's "done" (never lowered).
# KEYS: stream; ARGV: group, entry id, chat id or "", its number, ttl.
_DONE = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  local done = KEYS[1] .. ':chat:' .. ARGV[3] .. ':done'
  if tonumber(redis.call('GET', done) or '0') < tonumber(ARGV[4]) then
    redis.call('SET', done, ARGV[4], 'EX', ARGV[5])
  end
end
return 1
"""


class Inbox:
    """A Redis stream of Telegram updates with one consumer group: any process may handle any entry.

    Each serving process is a consumer that keeps a heartbeat in Redis. What a consumer without a heartbeat
    (a process that died) left pending is taken over by a live one within ``alive_ttl`` + ``check_every``
    seconds; what a live one holds is never taken from it, however long it takes (a /reindex).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        bot_id: int,
        *,
        consumer: str | None = None,
        concurrency: int = 64,
        seen_ttl: int = 26 * 3600,
        block: float = 1.0,
        alive_ttl: float = 5.0,
        check_every: float = 1.0,
        retry_after: float = 5.0,
        turn_timeout: float = 60.0,
    ) -> None:
        self._redis = redis
        self._bot_id = bot_id
        self.stream = keys.inbox(bot_id)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"
        self._concurrency = concurrency
        self._seen_ttl = seen_ttl  # Telegram keeps undelivered updates for 24 hours
        self._block_ms = int(block * 1000)
        self._alive_ms = int(alive_ttl * 1000)  # a process silent this long is taken for dead
        self._check_every = check_every  # heartbeat, and a look for dead processes' entries
        self._retry_after = retry_after  # an entry of this process interrupted by Redis is handled again after
        self._turn_timeout = turn_timeout  # how long an entry waits for the one before it in its chat
        self._put = redis.register_script(_PUT)
        self._done = redis.register_script(_DONE)
        self._turn_poll = 0.02  # how often an entry waiting for its chat's previous one looks again
        self._in_flight: set[asyncio.Task[None]] = set()
        self._in_hand: set[str] = set()  # entry ids being handled here
        self.duplicates = 0  # deliveries of an update already stored
        self.taken_over = 0  # entries taken over from processes that died

    async def put(self, updates: Sequence[Update]) -> int:
        """Store the updates (each once); returns how many were new. Telegram may be told they arrived after."""
        if not updates:
            return 0
        args: list[Any] = [self._seen_ttl]
        for update in updates:
            chat = update_chat_id(update)
            args += [update.update_id, "" if chat is None else chat, update.model_dump_json(exclude_unset=True)]
        added = int(await self._put(keys=[self.stream], args=args))
        self.duplicates += len(updates) - added
        if added < len(updates):
            log.info("%d update(s) delivered again were already in the inbox; dropped", len(updates) - added)
        return added

    async def serve(self, bot: Bot, dispatcher: Dispatcher, stop: asyncio.Event, **context: Any) -> None:
        """Handle stored updates until ``stop`` is set; those in hand when it is are finished first."""
        work = _Work(bot, dispatcher, asyncio.Semaphore(self._concurrency), context)
        loop = asyncio.get_running_loop()
        next_check = next_retry = 0.0
        with contextlib.suppress(RedisError):
            await self._beat()  # before the first entry is read: nobody takes this process for dead
        beating = asyncio.create_task(self._keep_beating(), name="inbox-heartbeat")
        try:
            while not stop.is_set():
                try:
                    if loop.time() >= next_check:
                        await self._take_over_the_dead(work)  # before new entries: they came first
                        next_check = loop.time() + self._check_every
                    if loop.time() >= next_retry:
                        await self._retry_own(work)
                        next_retry = loop.time() + self._retry_after
                    # A stop does not wait for the blocking read: what it would have read stays pending for this
                    # consumer, whose end (below) lets a live process, or the next start, take it over.
                    answer = await _unless_stopped(stop, self._redis.xreadgroup(
                        GROUP, self.consumer, {self.stream: ">"}, count=self._concurrency, block=self._block_ms
                    ))
                    if answer is None:
                        break
                except ResponseError as error:
                    if "NOGROUP" not in str(error):
                        raise
                    await self._ensure_group()  # a new stream, or it was deleted (FLUSHDB): start it again
                    continue
                except RedisConnectionError as error:
                    log.warning("inbox out of reach (%s); trying again in 1 s", error)
                    await asyncio.sleep(1.0)
                    continue
                for _stream, entries in answer or ():
                    for entry_id, fields in entries:
                        await self._start(work, entry_id, fields)
        finally:
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
            # A cancel that lands while the heartbeat's Redis call is in flight can be swallowed inside the client;
            # it is repeated until the heartbeat has stopped.
            while not beating.done():
                beating.cancel()
                await asyncio.wait({beating}, timeout=1.0)
            with contextlib.suppress(RedisError):
                await self._redis.delete(keys.inbox_consumer(self._bot_id, self.consumer))

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def _keep_beating(self) -> None:
        """This process is alive, whatever its loop is waiting for: what it holds is not taken from it."""
        while True:
            await asyncio.sleep(self._check_every)
            try:
                await self._beat()
            except RedisError as error:
                log.warning("inbox heartbeat not stored (%s)", error)

    async def _beat(self) -> None:
        await self._redis.set(keys.inbox_consumer(self._bot_id, self.consumer), "1", px=self._alive_ms)

    async def _take_over_the_dead(self, work: _Work) -> None:
        """Entries held by processes without a heartbeat are this one's now, in the order they came."""
        try:
            consumers = await self._redis.xinfo_consumers(self.stream, GROUP)
        except ResponseError as error:
            if "NOGROUP" not in str(error) and "no such key" not in str(error):
                raise
            await self._ensure_group()
            return
        for consumer in consumers:
            name = _text(consumer["name"])
            if name == self.consumer or await self._redis.exists(keys.inbox_consumer(self._bot_id, name)):
                continue
            if int(consumer["pending"]) == 0:
                await self._redis.xgroup_delconsumer(self.stream, GROUP, name)  # gone, and nothing left behind
                continue
            pending = await self._redis.xpending_range(
                self.stream, GROUP, min="-", max="+", count=1000, consumername=name
            )
            ids = [item["message_id"] for item in pending]
            # Idle for at least a second: a second process looking at the same time claims nothing twice.
            claimed = await self._redis.xclaim(self.stream, GROUP, self.consumer, 1000, ids) if ids else []
            for entry_id, fields in claimed:
                if fields:  # a deleted entry has no fields
                    self.taken_over += 1
                    log.warning("taking over update %s left unfinished", fields.get("update_id", "?"))
                    await self._start(work, entry_id, fields)
                else:
                    await self._redis.xack(self.stream, GROUP, entry_id)

    async def _retry_own(self, work: _Work) -> None:
        """Entries this consumer holds but is not handling: left by a Redis outage, or by a process of its name."""
        answer = await self._redis.xreadgroup(GROUP, self.consumer, {self.stream: "0"}, count=1000)
        for _stream, entries in answer or ():
            for entry_id, fields in entries:
                if entry_id in self._in_hand:
                    continue
                if fields:
                    log.warning("handling update %s again: it was interrupted", fields.get("update_id", "?"))
                    await self._start(work, entry_id, fields)
                else:
                    await self._redis.xack(self.stream, GROUP, entry_id)

    async def _start(self, work: _Work, entry_id: str, fields: dict[str, str]) -> None:
        await work.slots.acquire()  # no more than ``concurrency`` updates in hand; the rest wait in the stream
        task = asyncio.create_task(self._handle(work, entry_id, fields))
        self._in_flight.add(task)
        self._in_hand.add(entry_id)

        def done(finished: asyncio.Task[None]) -> None:
            self._in_flight.discard(finished)
            self._in_hand.discard(entry_id)
            work.slots.release()

        task.add_done_callback(done)

    async def _handle(self, work: _Work, entry_id: str, fields: dict[str, str]) -> None:
        try:
            update = Update.model_validate(json.loads(fields["update"]), context={"bot": work.bot})
            await self._wait_for_turn(fields)
            response = await work.dispatcher.feed_update(work.bot, update, **work.context)
            if isinstance(response, TelegramMethod):
                await work.dispatcher.silent_call_request(bot=work.bot, result=response)
        except asyncio.CancelledError:
            raise  # stays pending: the next process to start handles it
        except RedisError as error:
            # Redis went away mid-update: the entry stays pending and is handled again within ``retry_after``.
            log.warning("update %s interrupted (%s); it will be handled again", fields.get("update_id", "?"), error)
            return
        except Exception:
            # A bug, not a crash: handling it again would fail again. It is logged and let go, as Telegram would.
            log.exception("update %s could not be handled", fields.get("update_id", "?"))
        await self._done(
            keys=[self.stream], args=[GROUP, entry_id, fields.get("chat", ""), fields.get("seq", 0), self._seen_ttl]
        )

    async def _wait_for_turn(self, fields: dict[str, str]) -> None:
        """Wait until the entry before this one in its chat is done, whichever process holds it.

        One held by a process that died is taken over within seconds; past ``turn_timeout`` the wait gives up
        (a customer answered out of order is better than one never answered).
        """
        if "seq" not in fields:
            return
        previous = int(fields["seq"]) - 1
        done_key = keys.inbox_chat_done(self._bot_id, fields["chat"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._turn_timeout
        while int(await self._redis.get(done_key) or 0) < previous:
            if loop.time() > deadline:
                log.warning("update %s goes ahead of an earlier one of its chat never finished", fields["update_id"])
                return
            await asyncio.sleep(self._turn_poll)


@dataclass(frozen=True)
class _Work:
    """What handling an entry needs, fixed for one ``serve``."""

    bot: Bot
    dispatcher: Dispatcher
    slots: asyncio.Semaphore
    context: dict[str, Any]


def webhook_handler(bot: Bot, inbox: Inbox, secret: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Telegram's webhook call: the update is stored in the inbox before Telegram gets its 200.

    Handling happens after, from the inbox (``Inbox.serve``), in this process or any other. A call without the
    secret is refused (401); one whose update cannot be stored (Redis out of reach) gets a 503, and Telegram
    delivers the update again later.
    """

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=401, text="wrong secret token")
        try:
            update = Update.model_validate(await request.json(), context={"bot": bot})
        except (ValueError, ValidationError) as error:
            log.warning("webhook call without a Telegram update refused: %s", error)
            return web.Response(status=400, text="not a Telegram update")
        try:
            await inbox.put([update])
        except RedisError as error:
            log.warning("update %s not stored (%s); Telegram will deliver it again", update.update_id, error)
            return web.Response(status=503, text="storage out of reach, try again")
        return web.Response()

    return receive


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

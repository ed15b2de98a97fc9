"""The relay between a customer and his agent, through a durable outbox in Redis.

A relayed message is first written to a Redis stream (the outbox) while its Telegram update is handled, and
then delivered by one relay worker at a time (a leader lease), in order. Delivery records "sent" before it
acknowledges the entry, so a process killed at any moment loses no message (the entry stays pending and is
claimed again) and sends none twice (a claimed entry already marked "sent" is only acknowledged).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as aioredis
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramNetworkError, TelegramRetryAfter
from aiogram.types import InlineKeyboardMarkup, Message
from redis.exceptions import RedisError, ResponseError

from handoff import keys
from handoff.desk import HandoffDesk
from handoff.lease import Lease
from handoff.tickets import Ticket, TicketState

__all__ = ["OtherChannel", "Relay"]

log = logging.getLogger(__name__)

GROUP = "relay"
_ONCE_TTL = 2 * 24 * 3600

# Enqueue a message once per source (chat, message): an update handled again after a crash adds nothing.
_ENQUEUE_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', '100000', '*', unpack(ARGV, 2))
end
return false
"""

Notify = Callable[[Ticket], Awaitable[None]]
# (what the entry was tracked as, the delivered message id or 0, "" or "blocked" or "refused")
Delivered = Callable[[str, int, str], Awaitable[None]]


class OtherChannel(Protocol):
    """Customers who write from outside Telegram (a Rasa assistant's): what is relayed to them is handed over here.

    ``deliver`` gets the outbox entry (``text`` holds the words of a copied message) and returns a message id.
    """

    def reaches(self, chat_id: int) -> bool: ...

    async def deliver(self, entry: dict[str, str]) -> int: ...


def message_kind(message: Message) -> str:
    for kind in ("text", "photo", "document", "voice", "audio", "video", "video_note", "sticker", "animation",
                 "location", "venue", "contact"):
        if getattr(message, kind, None):
            return kind
    return "other"


class Relay:
    """Customer ↔ agent message relay with at-least-once storage and at-most-once delivery."""

    def __init__(
        self,
        redis: aioredis.Redis,
        desk: HandoffDesk,
        bot: Bot,
        *,
        header: Callable[[Ticket], str],
        on_waiting_message: Notify | None = None,
        on_customer_closed: Notify | None = None,
        on_delivered: Delivered | None = None,
        other_channel: OtherChannel | None = None,
        claim_idle_ms: int = 5_000,
    ) -> None:
        self._redis = redis
        self.desk = desk
        self.bot = bot
        self._header = header
        self._on_waiting_message = on_waiting_message
        self._on_customer_closed = on_customer_closed
        self.on_delivered = on_delivered
        self.other_channel = other_channel
        self._claim_idle_ms = claim_idle_ms
        self._consumer = f"{os.uname().nodename}-{os.getpid()}-{secrets.token_hex(3)}"
        self._lease = Lease(redis, keys.RELAY_LEADER, 10.0, owner=self._consumer)
        self._enqueue_once = redis.register_script(_ENQUEUE_ONCE)
        self.delivered = 0

    # ------------------------------------------------------------------ enqueue

    async def customer_message(self, message: Message, ticket: Ticket) -> None:
        """A message from a customer with an open ticket: into the ticket's context, and to his agent."""
        text = message.text or message.caption or ""
        kind = message_kind(message)
        turn = {"role": "customer", "kind": "text" if kind == "text" else "media", "text": text,
                "lang": ticket.lang, "data": {"media": kind} if kind != "text" else {}, "at": time.time()}
        await self.desk.append_context(ticket.id, json.dumps(turn, ensure_ascii=False))
        await self.desk.mark(ticket.id, customer_message=True)
        if ticket.state is TicketState.ASSIGNED:
            await self.enqueue(
                {
                    "ticket": ticket.id,
                    "to": str(ticket.agent_id),
                    "from_chat": str(message.chat.id),
                    "message_id": str(message.message_id),
                    "kind": kind,
                    "text": text if kind == "text" else "",
                    "header": self._header(ticket),
                    "direction": "to_agent",
                },
                once=f"{message.chat.id}:{message.message_id}",
            )
        elif self._on_waiting_message is not None:
            await self._on_waiting_message(ticket)

    async def agent_message(self, message: Message, ticket: Ticket) -> None:
        """An agent's answer: to the customer, as a copy (the agent's own account stays private)."""
        text = message.text or message.caption or ""
        kind = message_kind(message)
        turn = {"role": "agent", "kind": "text" if kind == "text" else "media", "text": text, "lang": ticket.lang,
                "data": {"agent_id": ticket.agent_id, "agent": ticket.agent_name}, "at": time.time()}
        await self.desk.append_context(ticket.id, json.dumps(turn, ensure_ascii=False))
        await self.desk.mark(ticket.id, agent_reply=True)
        await self.enqueue(
            {
                "ticket": ticket.id,
                "to": str(ticket.chat_id),
                "from_chat": str(message.chat.id),
                "message_id": str(message.message_id),
                "kind": kind,
                "text": text,
                "header": "",
                "direction": "to_customer",
            },
            once=f"{message.chat.id}:{message.message_id}",
        )

    async def customer_text(self, ticket: Ticket, text: str, source: str) -> None:
        """A customer's text from another channel (``source`` names it once): as ``customer_message`` does."""
        turn = {"role": "customer", "kind": "text", "text": text, "lang": ticket.lang, "data": {}, "at": time.time()}
        await self.desk.append_context(ticket.id, json.dumps(turn, ensure_ascii=False))
        await self.desk.mark(ticket.id, customer_message=True)
        if ticket.state is TicketState.ASSIGNED:
            entry = {"ticket": ticket.id, "to": str(ticket.agent_id), "kind": "text", "header": "",
                     "text": f"{self._header(ticket)}\n{text}", "direction": "to_agent"}
            await self.enqueue(entry, once=source)
        elif self._on_waiting_message is not None:
            await self._on_waiting_message(ticket)

    async def send_text(
        self,
        chat_id: int,
        text: str,
        ticket_id: str = "",
        direction: str = "notice",
        *,
        markup: str = "",
        track: str = "",
    ) -> None:
        """A text from the bot itself, delivered in order with the relayed messages of the same ticket.

        ``markup`` is inline-keyboard JSON; ``track`` names the message for the ``on_delivered`` hook.
        """
        await self.enqueue({"ticket": ticket_id, "to": str(chat_id), "text": text, "kind": "text",
                            "direction": direction, "header": "", "markup": markup, "track": track})

    async def enqueue(self, entry: dict[str, str], *, once: str = "") -> str | None:
        """Add ``entry`` to the outbox; with ``once``, only the first time that source is enqueued."""
        if not once:
            return str(await self._redis.xadd(keys.OUTBOX, entry, maxlen=100_000, approximate=True))
        flat = [item for pair in entry.items() for item in pair]
        added = await self._enqueue_once(keys=[f"{keys.PREFIX}:enqueued:{once}", keys.OUTBOX], args=[_ONCE_TTL, *flat])
        return str(added) if added else None

    async def ticket_closed_by_customer(self, ticket: Ticket) -> None:
        if self._on_customer_closed is not None:
            await self._on_customer_closed(ticket)

    # ------------------------------------------------------------------ deliver

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver outbox entries while this process holds the relay lease; until cancelled or ``stop`` is set."""
        await self._ensure_group()
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                if not await self._lead():
                    await asyncio.sleep(1.0)
                    continue
                await self.deliver_pending()
                entries = await self._redis.xreadgroup(GROUP, self._consumer, {keys.OUTBOX: ">"}, count=20, block=1000)
                for _stream, items in entries or []:
                    for entry_id, fields in items:
                        await self._deliver(entry_id, fields)
            except (TelegramNetworkError, OSError):
                log.warning("relay: Telegram unreachable; retrying", exc_info=True)
                await asyncio.sleep(1.0)
            except RedisError:
                log.warning("relay: Redis unavailable; retrying", exc_info=True)
                await asyncio.sleep(1.0)
            except Exception:  # undelivered entries stay pending and are retried; the worker lives on
                log.exception("relay: unexpected error; retrying")
                await asyncio.sleep(1.0)

    async def deliver_pending(self) -> int:
        """Entries claimed from consumers that stopped (or this one, after a restart); returns how many."""
        await self._ensure_group()
        count = 0
        start = "0-0"
        while True:
            start, items, *_ = await self._redis.xautoclaim(
                keys.OUTBOX, GROUP, self._consumer, min_idle_time=self._claim_idle_ms, start_id=start, count=50
            )
            for entry_id, fields in items:
                if fields:
                    await self._deliver(entry_id, fields)
                    count += 1
            if start in ("0-0", b"0-0"):
                return count

    async def _deliver(self, entry_id: str, fields: dict[str, str]) -> None:
        sent_key = keys.sent(entry_id)
        if await self._redis.exists(sent_key):
            await self._redis.xack(keys.OUTBOX, GROUP, entry_id)  # sent before a crash: never twice
            return
        try:
            if self.other_channel is not None and self.other_channel.reaches(int(fields["to"])):
                message_id = await self.other_channel.deliver(fields)
            else:
                message_id = await self._send(fields)
        except TelegramRetryAfter as exc:
            await asyncio.sleep(exc.retry_after)
            return  # stays pending; retried
        except (TelegramForbiddenError, TelegramBadRequest) as exc:
            log.warning("relay: entry %s for ticket %s not delivered: %s", entry_id, fields.get("ticket"), exc)
            message_id = 0
            if fields.get("track") and self.on_delivered is not None:
                blocked = isinstance(exc, TelegramForbiddenError)
                await self.on_delivered(fields["track"], 0, "blocked" if blocked else "refused")
        await self._redis.set(sent_key, str(message_id), ex=7 * 24 * 3600)
        await self._redis.xack(keys.OUTBOX, GROUP, entry_id)
        self.delivered += 1
        if message_id and fields.get("direction") == "to_agent" and fields.get("ticket"):
            await self.desk.remember_relay(int(fields["to"]), message_id, fields["ticket"])
        if message_id and fields.get("track") and self.on_delivered is not None:
            await self.on_delivered(fields["track"], message_id, "")

    async def _send(self, fields: dict[str, str]) -> int:
        to = int(fields["to"])
        if "message_id" not in fields:
            html = fields.get("direction", "").endswith("_html")
            markup = InlineKeyboardMarkup.model_validate_json(fields["markup"]) if fields.get("markup") else None
            sent = await self.bot.send_message(
                to, fields.get("text", ""), parse_mode="HTML" if html else None, reply_markup=markup
            )
            return sent.message_id
        source_chat, source_message = int(fields["from_chat"]), int(fields["message_id"])
        header = fields.get("header", "")
        kind = fields.get("kind", "text")
        if header and kind == "text" and fields.get("text"):
            return (await self.bot.send_message(to, f"{header}\n{fields['text']}")).message_id
        if header:
            head = await self.bot.send_message(to, header)
            await self.desk.remember_relay(to, head.message_id, fields.get("ticket", ""))
        copied = await self.bot.copy_message(chat_id=to, from_chat_id=source_chat, message_id=source_message)
        return copied.message_id

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(keys.OUTBOX, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _lead(self) -> bool:
        """Hold (or take over) the relay lease; only its holder delivers, so a chat's messages stay in order."""
        return await self._lease.hold()

    async def step_down(self) -> None:
        await self._lease.release()

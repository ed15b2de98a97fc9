"""The relay between a customer and his agent, through a durable outbox in Redis, on any channel.

A relayed message is first written to a Redis stream (the outbox) while its update is handled, and then
delivered by one relay worker at a time (a leader lease), in order, through the ``Delivery`` of the channel the
recipient is on (``handoff.ports``). Delivery records "sent" before it acknowledges the entry, so a process
killed at any moment loses no message (the entry stays pending and is claimed again) and sends none twice (a
claimed entry already marked "sent" is only acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from bot.core.conversation import Turn
from bot.core.redis_values import fields_of, optional_text, text, text_map
from handoff import keys
from handoff.desk import HandoffDesk
from handoff.events import HandoffEvents
from handoff.lease import Lease
from handoff.ports import ChannelUnreachable, DeliverLater, Delivery, DeliveryRefused, OutboxEntry, StaffButtons
from handoff.tickets import Ticket, TicketState

__all__ = ["Relay", "RelayMap", "RelayedStaff"]

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


class Relay:
    """Customer ↔ agent message relay with at-least-once storage and at-most-once delivery."""

    def __init__(
        self,
        redis: aioredis.Redis,
        desk: HandoffDesk,
        channels: Sequence[Delivery],
        *,
        header: Callable[[Ticket], str],
        events: HandoffEvents | None = None,
        claim_idle_ms: int = 5_000,
    ) -> None:
        """``channels``: where messages go, tried in order; the first that reaches a chat delivers to it."""
        self._redis = redis
        self.desk = desk
        self.channels = list(channels)
        self.map = RelayMap(redis)
        self._header = header
        self.events = events or HandoffEvents()
        self._claim_idle_ms = claim_idle_ms
        self._consumer = f"{os.uname().nodename}-{os.getpid()}-{secrets.token_hex(3)}"
        self._lease = Lease(redis, keys.RELAY_LEADER, 10.0, owner=self._consumer)
        self._enqueue_once = redis.register_script(_ENQUEUE_ONCE)
        self.delivered = 0

    # ------------------------------------------------------------------ enqueue

    async def customer_message(self, ticket: Ticket, chat_id: int, message_id: int, kind: str, text: str) -> None:
        """A message from a customer with an open ticket (``kind`` text, photo, document...; ``text`` its words or
        caption): into the ticket's context, and to his agent as a copy."""
        turn = Turn("customer", "text" if kind == "text" else "media", text, ticket.lang,
                    {"media": kind} if kind != "text" else {})
        await self.desk.append_turn(ticket.id, turn)
        await self.desk.mark(ticket.id, customer_message=True)
        if ticket.state is TicketState.ASSIGNED:
            await self.enqueue(
                OutboxEntry(
                    to=ticket.agent_id or 0, direction="to_agent", ticket=ticket.id, kind=kind,
                    text=text if kind == "text" else "", header=self._header(ticket),
                    source_chat=chat_id, source_message=message_id,
                ),
                once=f"{chat_id}:{message_id}",
            )
        else:
            await self.events.customer_wrote_while_waiting(ticket)

    async def agent_message(
        self, ticket: Ticket, chat_id: int, message_id: int, kind: str, text: str, *, file_ref: str = "",
        file_name: str = "",
    ) -> None:
        """An agent's answer: to the customer, as a copy (the agent's own account stays private); a file's
        reference and name go with it for a customer whose channel fetches files rather than copying them."""
        turn = Turn("agent", "text" if kind == "text" else "media", text, ticket.lang,
                    {"agent_id": ticket.agent_id, "agent": ticket.agent_name})
        await self.desk.append_turn(ticket.id, turn)
        await self.desk.mark(ticket.id, agent_reply=True)
        await self.enqueue(
            OutboxEntry(
                to=ticket.chat_id, direction="to_customer", ticket=ticket.id, kind=kind, text=text,
                source_chat=chat_id, source_message=message_id, file_ref=file_ref, file_name=file_name,
            ),
            once=f"{chat_id}:{message_id}",
        )

    async def customer_text(self, ticket: Ticket, text: str, source: str) -> None:
        """A customer's text from another channel (``source`` names it once): as ``customer_message`` does."""
        await self.desk.append_turn(ticket.id, Turn("customer", "text", text, ticket.lang))
        await self.desk.mark(ticket.id, customer_message=True)
        if ticket.state is TicketState.ASSIGNED:
            entry = OutboxEntry(to=ticket.agent_id or 0, direction="to_agent", ticket=ticket.id,
                                text=f"{self._header(ticket)}\n{text}")
            await self.enqueue(entry, once=source)
        else:
            await self.events.customer_wrote_while_waiting(ticket)

    async def customer_file(
        self, ticket: Ticket, path: str, name: str, kind: str, caption: str, source: str, *, file_id: str = ""
    ) -> None:
        """A file a customer uploaded on a channel that keeps it (the web widget; ``file_id`` its id there): into
        the ticket's context, and to his agent as that file."""
        await self.desk.append_turn(ticket.id, Turn("customer", "media", caption or name, ticket.lang,
                                                    {"media": kind, "file": name, "file_id": file_id}))
        await self.desk.mark(ticket.id, customer_message=True)
        if ticket.state is TicketState.ASSIGNED:
            entry = OutboxEntry(to=ticket.agent_id or 0, direction="to_agent", ticket=ticket.id, kind=kind,
                                text=caption, header=self._header(ticket), attachment=path, file_name=name)
            await self.enqueue(entry, once=source)
        else:
            await self.events.customer_wrote_while_waiting(ticket)

    async def agent_file(
        self, ticket: Ticket, path: str, name: str, kind: str, caption: str, source: str, *, file_id: str = ""
    ) -> None:
        """A file an agent uploaded on a channel that keeps it (the web workplace; ``file_id`` its id there): into
        the ticket's context, and to the customer as that file."""
        await self.desk.append_turn(ticket.id, Turn("agent", "media", caption or name, ticket.lang, {
            "media": kind, "file": name, "file_id": file_id, "agent_id": ticket.agent_id, "agent": ticket.agent_name,
        }))
        await self.desk.mark(ticket.id, agent_reply=True)
        entry = OutboxEntry(to=ticket.chat_id, direction="to_customer", ticket=ticket.id, kind=kind, text=caption,
                            attachment=path, file_name=name)
        await self.enqueue(entry, once=source)

    async def agent_text(self, ticket: Ticket, text: str, source: str) -> None:
        """An agent's answer typed on another channel (the web workplace; ``source`` names it once): into the
        ticket's context, and to the customer as words."""
        turn = Turn("agent", "text", text, ticket.lang, {"agent_id": ticket.agent_id, "agent": ticket.agent_name})
        await self.desk.append_turn(ticket.id, turn)
        await self.desk.mark(ticket.id, agent_reply=True)
        entry = OutboxEntry(to=ticket.chat_id, direction="to_customer", ticket=ticket.id, text=text)
        await self.enqueue(entry, once=source)

    async def send_text(
        self,
        chat_id: int,
        text: str,
        ticket_id: str = "",
        direction: str = "notice",
        *,
        html: bool = False,
        buttons: tuple[tuple[tuple[str, str], ...], ...] = (),
        track: str = "",
    ) -> None:
        """A text from the bot itself, delivered in order with the relayed messages of the same ticket.

        ``buttons``: rows of (label, data); ``track`` names the message for ``HandoffEvents.delivered``.
        """
        await self.enqueue(OutboxEntry(to=chat_id, direction=direction, ticket=ticket_id, text=text, html=html,
                                       buttons=buttons, track=track))

    async def enqueue(self, entry: OutboxEntry, *, once: str = "") -> str | None:
        """Add ``entry`` to the outbox; with ``once``, only the first time that source is enqueued."""
        fields = entry.to_fields()
        if not once:
            return str(await self._redis.xadd(keys.OUTBOX, fields_of(fields), maxlen=100_000, approximate=True))
        flat = [item for pair in fields.items() for item in pair]
        added = await self._enqueue_once(keys=[keys.enqueued(once), keys.OUTBOX], args=[_ONCE_TTL, *flat])
        return str(added) if added else None

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
                # [(stream, [(entry id, fields), ...])], or None after ``block`` ms without a new entry
                entries: Any = await self._redis.xreadgroup(
                    GROUP, self._consumer, {keys.OUTBOX: ">"}, count=20, block=1000
                )
                for _stream, items in entries or []:
                    for entry_id, fields in items:
                        await self._deliver(text(entry_id), text_map(fields))
            except (ChannelUnreachable, OSError):
                log.warning("relay: a channel is unreachable; retrying", exc_info=True)
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
                    await self._deliver(text(entry_id), text_map(fields))
                    count += 1
            if start in ("0-0", b"0-0"):
                return count

    async def _deliver(self, entry_id: str, fields: dict[str, str]) -> None:
        sent_key = keys.sent(entry_id)
        if await self._redis.exists(sent_key):
            await self._redis.xack(keys.OUTBOX, GROUP, entry_id)  # sent before a crash: never twice
            return
        entry = OutboxEntry.from_fields(fields)
        try:
            shown = list(await self._channel(entry.to).deliver(entry))
        except DeliverLater as exc:
            await asyncio.sleep(exc.seconds)
            return  # stays pending; retried
        except DeliveryRefused as exc:
            log.warning("relay: entry %s for ticket %s not delivered: %s", entry_id, entry.ticket, exc)
            shown = []
            if entry.track:
                await self.events.was_delivered(entry.track, 0, "blocked" if exc.blocked else "refused")
        message_id = shown[-1] if shown else 0
        await self._redis.set(sent_key, str(message_id), ex=7 * 24 * 3600)
        await self._redis.xack(keys.OUTBOX, GROUP, entry_id)
        self.delivered += 1
        if entry.direction == "to_agent" and entry.ticket:
            for shown_id in shown:
                await self.map.remember(entry.to, shown_id, entry.ticket)
        if message_id and entry.track:
            await self.events.was_delivered(entry.track, message_id, "")

    def _channel(self, chat_id: int) -> Delivery:
        for channel in self.channels:
            if channel.reaches(chat_id):
                return channel
        # Left pending for a process that has the channel (this one was built without it).
        raise ChannelUnreachable(f"no channel of this process reaches chat {chat_id}")

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


class RelayedStaff:
    """The ``StaffChannel`` of a process that cannot reach staff itself (``zabota actions`` without a Telegram
    token): what it has to tell agents and supervisors goes into the relay's outbox, and a process that can
    reach them (``zabota run``, on the same Redis) delivers it, durably and in order."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def send(self, chat_id: int, text: str, buttons: StaffButtons = ()) -> int | None:
        rows = tuple(tuple((b.text, b.data) for b in row) for row in buttons)
        await self.relay.send_text(chat_id, text, buttons=rows)
        return None  # delivered later, by another process: the message's id is not known here

    async def remove_buttons(self, chat_id: int, message_id: int) -> None:
        """Never asked: no message id is known here (a tap on a ticket already taken is refused politely)."""

    async def show_board(self, chat_id: int, text: str, message_id: int) -> int:
        return message_id  # the board is kept by the processes that run the queue monitor


class RelayMap:
    """Which message in an agent's chat stands for which ticket, so that a reply to it reaches that customer."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def remember(self, chat_id: int, message_id: int, ticket_id: str, ttl: int = 7 * 24 * 3600) -> None:
        await self._redis.set(keys.relay(chat_id, message_id), ticket_id, ex=ttl)

    async def ticket_of(self, chat_id: int, message_id: int) -> str | None:
        return optional_text(await self._redis.get(keys.relay(chat_id, message_id)))

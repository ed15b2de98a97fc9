"""The hand-off between a Rasa conversation and a Zabota agent, through Rasa's HTTP API.

While a Rasa conversation is paused for an agent, Rasa keeps logging what the customer writes but answers
nothing. The bridge reads those messages from Rasa's tracker and passes them to the agent; it pushes what the
agent (and Zabota: "an agent joined", the survey after closing) says into the conversation as bot messages sent
through the customer's channel; and when the ticket closes it resumes the conversation, so the assistant
answers again. One ``zabota actions`` process at a time does this (a lease in Redis).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.rasa import keys
from bot.rasa.channel import OutboxMessage, RasaConversations, RasaOutbox
from handoff import HandoffDesk
from handoff.lease import Lease
from handoff.relay import Relay
from kb_index.errors import ZabotaError

__all__ = ["RasaApiError", "RasaBridge"]

log = logging.getLogger(__name__)


class RasaApiError(ZabotaError):
    """Rasa's HTTP API refused a call or could not be reached (it is retried on the next pass)."""


class RasaBridge:
    def __init__(
        self,
        redis: aioredis.Redis,
        conversations: RasaConversations,
        outbox: RasaOutbox,
        desk: HandoffDesk,
        relay: Relay,
        *,
        rasa_url: str,
        token: str = "",
        output_channel: str = "latest",
        poll_seconds: float = 2.0,
        session_factory: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession,
    ) -> None:
        self.conversations = conversations
        self.outbox = outbox
        self.desk = desk
        self.relay = relay
        self.rasa_url = rasa_url.rstrip("/")
        self._token = token
        self.output_channel = output_channel
        self.poll_seconds = poll_seconds
        self._session_factory = session_factory
        self._session: aiohttp.ClientSession | None = None
        # Renewed and released only by its owner, atomically: a bridge that lost it never extends a successor's.
        owner = f"rasa-bridge-{secrets.token_hex(4)}"
        self._lease = Lease(redis, keys.BRIDGE_LEASE, max(poll_seconds * 5, 10), owner=owner)

    async def run(self, stop: asyncio.Event) -> None:
        """Pass messages both ways while this process holds the lease; until ``stop`` is set."""
        try:
            while not stop.is_set():
                try:
                    if await self._lead():
                        await self.pass_messages()
                except (RasaApiError, aiohttp.ClientError, TimeoutError) as exc:
                    log.warning("Rasa's HTTP API at %s: %s; retrying", self.rasa_url, exc)
                except RedisError:
                    log.warning("Rasa bridge: Redis unavailable; retrying", exc_info=True)
                except Exception:  # whatever was not passed on stays in Redis for the next pass; the bridge lives on
                    log.exception("Rasa bridge: unexpected error; retrying")
                try:
                    await asyncio.wait_for(stop.wait(), self.poll_seconds)
                except TimeoutError:
                    pass
        finally:
            await self.close()

    async def pass_messages(self) -> None:
        """One pass: what waits for Rasa customers goes out, then the customers' new messages come in."""
        await self.push_outbox()
        await self.follow_tickets()

    async def push_outbox(self) -> int:
        """Messages for Rasa customers, in order, into their conversations; returns how many went out."""
        pushed = 0
        for entry_id, message in await self.outbox.pending():
            sender_id = await self.conversations.sender_id(message.chat_id)
            if sender_id is not None:
                await self._append(sender_id, [_bot_event(message)], side_effects=True)
            else:
                log.warning("no Rasa conversation for chat %s: message dropped", message.chat_id)
            await self.outbox.pushed(entry_id)
            pushed += 1
        return pushed

    async def follow_tickets(self) -> None:
        """New customer messages of open hand-offs to their agents; closed hand-offs resumed in Rasa."""
        for ticket_id in await self.conversations.watched():
            ticket = await self.desk.get(ticket_id)
            sender_id = await self.conversations.sender_id(ticket.chat_id) if ticket is not None else None
            if ticket is None or sender_id is None:
                await self.conversations.forget(ticket_id)
                continue
            if not ticket.is_open:
                await self._append(sender_id, [{"event": "resume"}], side_effects=False)
                await self.conversations.forget(ticket_id)
                continue
            seen = await self.conversations.seen(ticket_id)
            for event in await self._events(sender_id):
                at = float(event.get("timestamp") or 0)
                text = str(event.get("text") or "").strip()
                if event.get("event") != "user" or at <= seen:
                    continue
                if text and not text.startswith("/"):  # a stale button's payload is not something to read out
                    source = f"rasa:{ticket.id}:{event.get('message_id') or at}"
                    await self.relay.customer_text(ticket, text, source)
                await self.conversations.mark_seen(ticket_id, at)
                seen = at

    # ------------------------------------------------------------------ Rasa's HTTP API

    async def _append(self, sender_id: str, events: list[dict[str, Any]], *, side_effects: bool) -> None:
        params = {"execute_side_effects": "true" if side_effects else "false", "output_channel": self.output_channel}
        await self._call("POST", f"/conversations/{quote(sender_id, safe='')}/tracker/events", params, events)

    async def _events(self, sender_id: str) -> list[dict[str, Any]]:
        tracker = await self._call("GET", f"/conversations/{quote(sender_id, safe='')}/tracker",
                                   {"include_events": "AFTER_RESTART"})
        events = tracker.get("events") if isinstance(tracker, dict) else None
        return [e for e in events or [] if isinstance(e, dict)]

    async def _call(self, method: str, path: str, params: dict[str, str], body: object = None) -> Any:
        if self._token:
            params = {**params, "token": self._token}
        if self._session is None:
            self._session = self._session_factory()
        timeout = aiohttp.ClientTimeout(total=10)
        async with self._session.request(method, self.rasa_url + path, params=params, json=body, timeout=timeout) as r:
            if r.status >= 400:
                raise RasaApiError(f"{method} {path}: HTTP {r.status} {(await r.text())[:200]}")
            return await r.json(content_type=None)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._lease.release()

    async def _lead(self) -> bool:
        return await self._lease.hold()


def _bot_event(message: OutboxMessage) -> dict[str, Any]:
    """A bot message event: with ``execute_side_effects``, Rasa sends it through the customer's channel."""
    data: dict[str, Any] = {"buttons": message.buttons} if message.buttons else {}
    return {"event": "bot", "text": message.text, "data": data, "metadata": {"zabota_ticket": message.ticket}}

"""Rasa conversations as Zabota customers: their chat ids, and the outbox of what is said to them.

Tickets and surveys identify a customer by a numeric chat id. A Rasa conversation (a ``sender_id`` string) gets
one from the Rasa range of ``bot.core.channels``, so the relay knows at once that a message for it goes to the
Rasa outbox, not to Telegram; ``bot.rasa.bridge`` pushes it into Rasa.
Nothing here needs rasa-sdk: the Telegram bot's relay uses this module too.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis

from bot.core.channels import Channel, channel_of, chat_id_in
from bot.rasa import keys
from handoff.ports import OutboxEntry
from surveys.questions import parse_tap

__all__ = [
    "ARTICLE_ENTITY",
    "ARTICLE_INTENT",
    "HANDOFF_INTENT",
    "SURVEY_ENTITY",
    "SURVEY_INTENT",
    "OutboxMessage",
    "RasaConversations",
    "RasaOutbox",
    "article_payload",
    "is_rasa_chat",
    "parse_survey_answer",
    "survey_buttons",
    "survey_payload",
]


# Button payloads: Rasa reads "/intent{json}" as that intent with those entities, without its NLU.
ARTICLE_INTENT = "zabota_kb_article"
ARTICLE_ENTITY = "zabota_article"
SURVEY_INTENT = "zabota_survey_answer"
SURVEY_ENTITY = "zabota_survey_answer"
HANDOFF_INTENT = "zabota_handoff"
_TAG = re.compile(r"<[^>]+>")


def is_rasa_chat(chat_id: int) -> bool:
    return channel_of(chat_id) is Channel.RASA


def article_payload(article_id: str) -> str:
    return f"/{ARTICLE_INTENT}" + json.dumps({ARTICLE_ENTITY: article_id}, ensure_ascii=False)


def survey_payload(survey_id: str, question: str, value: str) -> str:
    return f"/{SURVEY_INTENT}" + json.dumps({SURVEY_ENTITY: f"{survey_id}:{question}:{value}"})


def parse_survey_answer(value: str) -> tuple[str, str, str] | None:
    """``(survey id, question, value)`` from "<id>:<question>:<value>" (a Telegram survey callback works too)."""
    return parse_tap(value)


def survey_buttons(rows: tuple[tuple[tuple[str, str], ...], ...]) -> list[dict[str, str]]:
    """A survey's buttons (rows of label and tap data) as Rasa buttons whose payloads record the answer (other
    buttons are left out)."""
    buttons = []
    for row in rows:
        for label, data in row:
            tap = parse_tap(data)
            if tap is not None:
                buttons.append({"title": label, "payload": survey_payload(*tap)})
    return buttons


class RasaConversations:
    """Which chat id stands for which Rasa conversation, and which hand-offs of them are still open."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def chat_id(self, sender_id: str) -> int:
        """The conversation's chat id, given on first use and kept."""
        known = await self.find(sender_id)
        if known is not None:
            return known
        chat_id = chat_id_in(Channel.RASA, int(await self._redis.incr(keys.SEQUENCE)))
        if not await self._redis.set(keys.sender(sender_id), str(chat_id), nx=True):
            other = await self.find(sender_id)  # another process gave it one first
            if other is not None:
                return other
            await self._redis.set(keys.sender(sender_id), str(chat_id))
        await self._redis.set(keys.chat(chat_id), sender_id)
        return chat_id

    async def find(self, sender_id: str) -> int | None:
        raw = await self._redis.get(keys.sender(sender_id))
        return int(raw) if raw else None

    async def sender_id(self, chat_id: int) -> str | None:
        return await self._redis.get(keys.chat(chat_id))

    async def watch(self, ticket_id: str, since: float) -> None:
        """A hand-off to follow: the customer's messages after Rasa's time ``since`` go to the agent."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.seen(ticket_id), str(since), nx=True)
            pipe.sadd(keys.TICKETS, ticket_id)
            await pipe.execute()

    async def watched(self) -> list[str]:
        return sorted(await self._redis.smembers(keys.TICKETS))

    async def seen(self, ticket_id: str) -> float:
        return float(await self._redis.get(keys.seen(ticket_id)) or 0)

    async def mark_seen(self, ticket_id: str, at: float) -> None:
        await self._redis.set(keys.seen(ticket_id), str(at))

    async def forget(self, ticket_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.srem(keys.TICKETS, ticket_id)
            pipe.delete(keys.seen(ticket_id))
            await pipe.execute()


@dataclass(frozen=True)
class OutboxMessage:
    """One message for a Rasa customer: plain text, and buttons with Rasa payloads."""

    chat_id: int
    text: str
    ticket: str = ""
    buttons: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> OutboxMessage:
        data: dict[str, Any] = json.loads(raw)
        return cls(**data)


class RasaOutbox:
    """The relay's delivery to Rasa customers (``handoff.ports.Delivery``): their messages wait here until the
    bridge pushes them into Rasa."""

    def __init__(self, redis: aioredis.Redis, *, max_len: int = 100_000) -> None:
        self._redis = redis
        self._max_len = max_len

    def reaches(self, chat_id: int) -> bool:
        return is_rasa_chat(chat_id)

    async def deliver(self, entry: OutboxEntry) -> list[int]:
        text = entry.text
        if entry.html:
            text = html.unescape(_TAG.sub("", text))
        if entry.kind != "text":  # a photo or a file an agent sent stays in Telegram; the customer learns it was sent
            text = f"[{entry.kind}] {text}".strip()
        message = OutboxMessage(entry.to, text, entry.ticket, survey_buttons(entry.buttons))
        number = int(await self._redis.incr(keys.OUTBOX_SEQUENCE))
        await self._redis.xadd(keys.OUTBOX, {"message": message.to_json()}, maxlen=self._max_len, approximate=True)
        return [number]

    async def pending(self, count: int = 50) -> list[tuple[str, OutboxMessage]]:
        """Messages not yet pushed into Rasa, oldest first, with their entry ids."""
        last = await self._redis.get(keys.OUTBOX_PUSHED) or "0-0"
        entries = await self._redis.xrange(keys.OUTBOX, min=f"({last}", max="+", count=count)
        return [(entry_id, OutboxMessage.from_json(fields["message"])) for entry_id, fields in entries]

    async def pushed(self, entry_id: str) -> None:
        await self._redis.set(keys.OUTBOX_PUSHED, entry_id)

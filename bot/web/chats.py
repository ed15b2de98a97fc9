"""What each visitor's widget shows, kept in Redis so that every process serves it and nothing is lost.

A chat is a Redis stream of events: a message (from the visitor, the bot or an agent, with its buttons) or an
edit of one (new words, buttons taken off). A widget replays the stream when it opens, so a reload or a second
tab shows the whole conversation, and follows it live over server-sent events from the id it last saw, so a lost
connection misses nothing. ``WebHub`` wakes the waiting connections of this process when any process writes to a
chat (Redis pub/sub); a missed wake-up costs at most one poll interval, never a message.

``WebDelivery`` and ``WebCustomers`` are the hand-off's ports (``handoff.ports``) for web visitors: an agent's
reply, a queue notice or a survey from the relay becomes a message here; the queue monitor's edits become edits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.core.channels import Channel, channel_of
from bot.core.redis_values import text, text_map
from bot.web import keys
from bot.web.files import StoredFile, UnacceptableFile, WebFiles
from bot.web.render import safe_html
from handoff.ports import OutboxEntry

__all__ = ["ChatEvent", "WebChats", "WebCustomers", "WebDelivery", "WebHub"]

log = logging.getLogger(__name__)

Buttons = Sequence[Sequence[tuple[str, str]]]  # rows of (label, tap data)


@dataclass(frozen=True)
class ChatEvent:
    """One entry of a chat's stream, as the widget receives it: ``id`` its stream id, ``data`` the event."""

    id: str
    data: dict[str, Any]


def _buttons(rows: Buttons) -> list[list[dict[str, str]]]:
    return [[{"label": label, "data": data} for label, data in row] for row in rows if row]


class WebChats:
    def __init__(self, redis: aioredis.Redis, *, keep_messages: int = 1000, retention_days: int = 90) -> None:
        self._redis = redis
        self._keep = keep_messages
        self._ttl = retention_days * 86400

    async def _add(self, chat_id: int, event: dict[str, Any]) -> str:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(keys.chat(chat_id), {"event": json.dumps(event, ensure_ascii=False)},
                      maxlen=self._keep, approximate=True)
            pipe.expire(keys.chat(chat_id), self._ttl)
            pipe.publish(keys.EVENTS, str(chat_id))
            entry_id, *_ = await pipe.execute()
        return text(entry_id)

    async def add_message(
        self,
        chat_id: int,
        role: str,
        words: str,
        *,
        is_html: bool = False,
        buttons: Buttons = (),
        client_id: str = "",
        agent: str = "",
        file: dict[str, object] | None = None,
    ) -> int:
        """A message in the chat (``role``: visitor, bot, agent); its number, by which it is edited later."""
        number = int(await self._redis.incr(keys.chat_sequence(chat_id)))
        await self._redis.expire(keys.chat_sequence(chat_id), self._ttl)
        event: dict[str, Any] = {
            "type": "message", "n": number, "role": role, "html": safe_html(words, is_html=is_html),
            "buttons": _buttons(buttons), "at": round(time.time(), 3),
        }
        if client_id:
            event["cid"] = client_id
        if agent:
            event["agent"] = agent
        if file:
            event["file"] = file
        await self._add(chat_id, event)
        return number

    async def edit(
        self, chat_id: int, number: int, *, words: str | None = None, is_html: bool = False,
        buttons: Buttons | None = None,
    ) -> None:
        """Change message ``number``: new words, new buttons (``()`` takes them off); what is None stays."""
        event: dict[str, Any] = {"type": "edit", "n": number}
        if words is not None:
            event["html"] = safe_html(words, is_html=is_html)
        if buttons is not None:
            event["buttons"] = _buttons(buttons)
        await self._add(chat_id, event)

    async def events(self, chat_id: int, after: str = "0-0", count: int = 500) -> list[ChatEvent]:
        """The chat's events after stream id ``after``, oldest first."""
        start = f"({after}" if after not in ("", "0", "0-0") else "-"
        try:
            entries = await self._redis.xrange(keys.chat(chat_id), min=start, max="+", count=count)
        except RedisError as exc:
            if "Invalid stream ID" in str(exc):
                return []
            raise
        return [ChatEvent(text(entry_id), json.loads(text_map(fields)["event"])) for entry_id, fields in entries or []]

    async def buttons_of(self, chat_id: int, number: int) -> set[str]:
        """The tap data of the buttons message ``number`` shows now (none after they were taken off)."""
        shown: set[str] = set()
        for event in await self.events(chat_id, count=self._keep * 2):
            if event.data.get("n") == number and "buttons" in event.data:
                shown = {button["data"] for row in event.data["buttons"] for button in row}
        return shown


class WebHub:
    """Wakes this process's open widget connections when their chat changes, whichever process changed it."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._waiting: dict[int, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def listening(self, chat_id: int) -> Any:
        event = asyncio.Event()
        self._waiting.setdefault(chat_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._waiting.get(chat_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[chat_id]

    def wake(self, chat_id: int) -> None:
        for event in self._waiting.get(chat_id, ()):
            event.set()

    def wake_everyone(self) -> None:
        for events in self._waiting.values():
            for event in events:
                event.set()

    @property
    def connections(self) -> int:
        return sum(len(events) for events in self._waiting.values())

    async def run(self, stop: asyncio.Event) -> None:
        """Listen to the channel's pub/sub until ``stop``; reconnects after a Redis failure."""
        while not stop.is_set():
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(keys.EVENTS)
                while not stop.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        with contextlib.suppress(ValueError):
                            self.wake(int(text(message["data"])))
            except (RedisError, OSError):
                log.warning("web: Redis pub/sub lost; reconnecting", exc_info=True)
                for chat_id in list(self._waiting):  # whoever waited re-reads his chat
                    self.wake(chat_id)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]


FetchFile = Callable[[str], Awaitable[bytes]]  # a channel's file reference -> the file's bytes


class WebDelivery:
    """``handoff.ports.Delivery`` for web visitors: what the relay delivers becomes a message in their chat.

    A file an agent sent from another channel is fetched there (``fetch``: Telegram's file by its id) and kept
    like a visitor's own (``files``); one that cannot be fetched or kept reaches him as a line saying it was sent.
    """

    def __init__(self, chats: WebChats, files: WebFiles | None = None, fetch: FetchFile | None = None) -> None:
        self.chats = chats
        self.files = files
        self.fetch = fetch

    def reaches(self, chat_id: int) -> bool:
        return channel_of(chat_id) is Channel.WEB

    async def deliver(self, entry: OutboxEntry) -> Sequence[int]:
        role = "agent" if entry.direction == "to_customer" else "bot"
        words = entry.text
        stored = await self._fetched(entry) if entry.kind != "text" else None
        if entry.kind != "text" and stored is None:
            words = f"[{entry.kind}] {words}".strip()
        return [await self.chats.add_message(entry.to, role, words, is_html=entry.html, buttons=entry.buttons,
                                             file=stored.to_event() if stored is not None else None)]

    async def _fetched(self, entry: OutboxEntry) -> StoredFile | None:
        if entry.attachment and self.files is not None:  # kept here already (an agent's upload in the workplace)
            return await self.files.get(Path(entry.attachment).stem)
        if not entry.file_ref or self.files is None or self.fetch is None:
            return None
        try:
            data = await self.fetch(entry.file_ref)
            return await self.files.save(entry.to, entry.file_name or entry.kind, data)
        except UnacceptableFile:
            return None
        except Exception:  # the other channel's servers: the words still go, with a note of the file
            log.warning("web: the file of outbox entry for %s could not be fetched", entry.to, exc_info=True)
            return None


class WebCustomers:
    """``handoff.ports.CustomerChannel`` for web visitors: the queue monitor's edits of what they were shown."""

    def __init__(self, chats: WebChats) -> None:
        self.chats = chats

    async def edit(self, chat_id: int, message_id: int, text: str) -> bool:
        await self.chats.edit(chat_id, message_id, words=text)
        return True

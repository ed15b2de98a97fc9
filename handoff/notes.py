"""Agents' internal notes on a ticket: written by one agent for the next (shown on the context card and in the
workplace, found by search), never shown to the customer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis

from handoff import keys

__all__ = ["Note", "TicketNotes"]


@dataclass(frozen=True)
class Note:
    agent_id: int
    text: str
    at: float


class TicketNotes:
    """The notes of each ticket, oldest first, in Redis."""

    def __init__(self, redis: aioredis.Redis, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock

    async def add(self, ticket_id: str, agent_id: int, text: str) -> Note:
        note = Note(agent_id, text, self._clock())
        await self._redis.rpush(keys.notes(ticket_id), json.dumps(asdict(note), ensure_ascii=False))
        return note

    async def of(self, ticket_id: str) -> list[Note]:
        return [_note(json.loads(raw)) for raw in await self._redis.lrange(keys.notes(ticket_id), 0, -1)]


def _note(data: dict[str, object]) -> Note:
    return Note(int(str(data.get("agent_id", 0))), str(data.get("text", "")), float(str(data.get("at", 0))))

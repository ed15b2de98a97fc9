"""Search over closed conversations: an agent finds a customer's earlier ticket by its number, the customer's
name or the words said in it, among hundreds of thousands.

Each closed ticket is indexed once: the stems of its number, the customer's name and username, his question, the
words he and the agents wrote and the agents' notes (not the bot's article texts, which every conversation
about an article would share). Each stem keeps a Redis string of the numbers of the tickets that contain it, eight
digits each, appended as tickets close; a search reads the strings of the query's stems and intersects them, so
its cost follows how many tickets contain the query's words, not how many tickets there are. A bitmap of the
numbers already indexed makes indexing idempotent across processes and restarts; ``catch_up`` indexes what
closed while no process was listening (a crash between closing and indexing, or tickets from before this index).
"""

from __future__ import annotations

import logging
import re

import numpy as np
import redis.asyncio as aioredis

from bot.core.conversation import Turn
from handoff import keys
from handoff.desk import HandoffDesk
from handoff.tickets import Ticket, TicketState
from kb_index.lexical import tokenize

__all__ = ["ConversationSearch"]

log = logging.getLogger(__name__)

MAX_STEMS = 300  # per ticket: enough for a long conversation's distinct words, bounded for a pasted log
WIDTH = 8  # digits of a ticket number in a posting string: up to T99999999

_INDEX = """
if redis.call('SETBIT', KEYS[1], ARGV[1], 1) == 1 then return 0 end
for i = 2, #KEYS do redis.call('APPEND', KEYS[i], ARGV[2]) end
return 1
"""


def ticket_number(ticket_id: str) -> int | None:
    digits = ticket_id[1:] if ticket_id[:1] in ("T", "t") else ticket_id
    return int(digits) if digits.isdigit() else None


class ConversationSearch:
    def __init__(self, redis: aioredis.Redis, desk: HandoffDesk) -> None:
        self._redis = redis
        self.desk = desk
        self._index = redis.register_script(_INDEX)

    @staticmethod
    def stems(ticket: Ticket, turns: list[Turn], notes: list[str]) -> list[str]:
        """The distinct stems a ticket is found by, the ticket's own first."""
        words = [ticket.customer_name, ticket.username, ticket.question, *notes]
        words += [turn.text for turn in turns if turn.role in ("customer", "agent") and turn.text]
        number = ticket_number(ticket.id)
        seen: dict[str, None] = {f"№{number}": None} if number is not None else {}
        for text in words:
            for stem in tokenize(text):
                seen.setdefault(stem, None)
                if len(seen) >= MAX_STEMS:
                    return list(seen)
        return list(seen)

    async def ticket_closed(self, ticket: Ticket) -> None:
        """The hand-off event: a closed ticket becomes searchable."""
        try:
            await self.index(ticket)
        except Exception:  # searching is not worth losing the close over; catch_up indexes it later
            log.exception("ticket %s could not be indexed for search", ticket.id)

    async def index(self, ticket: Ticket) -> bool:
        """Index a closed ticket; False when it was indexed already (by this or another process)."""
        number = ticket_number(ticket.id)
        if number is None or number >= 10**WIDTH or ticket.state is not TicketState.CLOSED:
            return False
        turns = await self.desk.context(ticket.id)
        notes = [note.text for note in await self.desk.notes.of(ticket.id)]
        stems = self.stems(ticket, turns, notes)
        posting = f"{number:0{WIDTH}d}"
        indexed = await self._index(
            keys=[keys.SEARCH_INDEXED, *(keys.search_stem(stem) for stem in stems)], args=[number, posting]
        )
        return bool(indexed)

    async def search(self, query: str, limit: int = 100) -> list[str]:
        """Ids of closed tickets with every word of ``query``, newest first. "T12" (or "#12", "№12") is ticket
        T12; a bare number is either a ticket's number or a number said in it (an order number)."""
        terms = _terms(query)
        if not terms:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for term in terms:
                for stem in term:
                    pipe.get(keys.search_stem(stem))
            raw = iter(await pipe.execute())
        arrays: list[np.ndarray] = []
        for term in terms:
            choices = [_numbers(posting) for posting in (next(raw) for _ in term) if posting]
            if not choices:
                return []
            arrays.append(np.unique(np.concatenate(choices)))
        arrays.sort(key=len)
        matched = arrays[0]
        for other in arrays[1:]:
            matched = np.intersect1d(matched, other, assume_unique=True)
            if not matched.size:
                return []
        return [f"T{number}" for number in matched[::-1][:limit]]

    async def catch_up(self, batch: int = 1000) -> int:
        """Index every closed ticket not indexed yet (oldest first); how many were."""
        newest = int(await self._redis.get(keys.SEQUENCE) or 0)
        done = 0
        for start in range(1, newest + 1, batch):
            numbers = range(start, min(newest, start + batch - 1) + 1)
            async with self._redis.pipeline(transaction=False) as pipe:
                for number in numbers:
                    pipe.getbit(keys.SEARCH_INDEXED, number)
                bits = await pipe.execute()
            missing = [f"T{number}" for number, bit in zip(numbers, bits) if not bit]
            for ticket in await self.desk.get_many(missing):
                if ticket.state is TicketState.CLOSED and await self.index(ticket):
                    done += 1
        if done:
            log.info("%d closed tickets indexed for search", done)
        return done


_TICKET = re.compile(r"[#№]?([TtТт]?)(\d+)")


def _terms(query: str) -> list[tuple[str, ...]]:
    """The query as terms that must all match, each a choice of stems."""
    terms: list[tuple[str, ...]] = []
    for word in query.split():
        ticket = _TICKET.fullmatch(word)
        if ticket is None:
            terms += [(stem,) for stem in tokenize(word)]
        elif ticket.group(1) or word[0] in "#№" or len(ticket.group(2)) < 2:
            terms.append((f"№{int(ticket.group(2))}",))
        else:
            terms.append((f"№{int(ticket.group(2))}", ticket.group(2)))
    return list(dict.fromkeys(terms))


def _numbers(raw: str | bytes) -> np.ndarray:
    data = raw.encode("ascii") if isinstance(raw, str) else raw
    return np.frombuffer(data, dtype=f"S{WIDTH}").astype(np.int64)

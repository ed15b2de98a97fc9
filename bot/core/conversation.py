"""The conversation log and the dialog state of each customer, kept in Redis.

Every turn — what the customer wrote or tapped, what the bot answered with which articles and scores, each
decision, each hand-off — is appended to the conversation's log. The log is the context an agent receives
with a hand-off, and the source of "questions the knowledge base could not answer".
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis

from bot.core import keys
from bot.core.handling import current as current_handling

__all__ = ["ConversationLog", "ConversationState", "DialogStates", "ShownSearch", "Turn"]


@dataclass(frozen=True)
class Turn:
    """One thing that happened in a conversation."""

    role: str  # customer | bot | agent | system
    kind: str  # text | button | media | answer | clarify | handoff | feedback | decision | note ...
    text: str = ""
    lang: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    update: str = ""  # the Telegram update whose handling wrote it (see ``bot.core.handling``)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Turn:
        data = json.loads(raw)
        return cls(**{name: data[name] for name in _TURN_FIELDS if name in data})


_TURN_FIELDS = tuple(f.name for f in fields(Turn))

# Turns written while an update is handled, each once: a turn whose step is already marked was written by an
# earlier try of the update. KEYS: the log, the update's steps; ARGV: max turns, retention, the steps' TTL,
# then a step and its turn for each turn.
_APPEND_ONCE = """
local added = 0
for i = 4, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], '1') == 1 then
    redis.call('RPUSH', KEYS[1], ARGV[i + 1])
    added = added + 1
  end
end
if added > 0 then
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return added
"""


class ConversationLog:
    """Append-only log of turns per conversation, trimmed to ``max_turns`` and kept for ``retention``."""

    def __init__(self, redis: aioredis.Redis, retention: timedelta, max_turns: int = 1000) -> None:
        self._redis = redis
        self._retention = int(retention.total_seconds())
        self._max_turns = max_turns
        self._append_once = redis.register_script(_APPEND_ONCE)

    async def append(self, chat_id: int, *turns: Turn) -> None:
        """Append turns, in one round trip; while an update is handled, once (handled again after a crash, they
        are not repeated)."""
        if not turns:
            return
        key = keys.conversation_log(chat_id)
        update = current_handling()
        if update is None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(key, *(turn.to_json() for turn in turns))
                pipe.ltrim(key, -self._max_turns, -1)
                pipe.expire(key, self._retention)
                await pipe.execute()
            return
        args: list[str | int] = [self._max_turns, self._retention, update.ttl]
        for turn in turns:
            args += [update.step(f"log:{chat_id}"), replace(turn, update=update.key).to_json()]
        await self._append_once(keys=[key, update.key], args=args)

    async def recent(self, chat_id: int, limit: int = 50, *, before_this_update: bool = False) -> list[Turn]:
        """The last ``limit`` turns. ``before_this_update``: without what the update being handled wrote (when it
        is handled again after a crash, its first try's turns are not the customer's past)."""
        raw = await self._redis.lrange(keys.conversation_log(chat_id), -limit, -1)
        turns = [Turn.from_json(item) for item in raw]
        update = current_handling()
        if before_this_update and update is not None:
            turns = [turn for turn in turns if turn.update != update.key]
        return turns


@dataclass
class ConversationState:
    """What the dialog remembers about one conversation between messages."""

    lang: str = ""
    last_search: str = ""  # id of the last search shown
    awaiting_feedback: str = ""  # search id whose "did this help?" is still open
    negative_streak: int = 0  # "no, it did not help" in a row
    frustrated: bool = False
    frustration_reasons: list[str] = field(default_factory=list)


@dataclass
class ShownSearch:
    """A search whose results the customer saw, kept so that buttons under it keep working."""

    question: str
    lang: str
    decision: str
    confidence: float
    matches: list[dict[str, Any]]  # article_id, title, score, lang
    shown: list[str] = field(default_factory=list)  # article ids already offered or answered


# The first save of a state while an update is handled keeps, among the update's steps, the state as it was
# before; the update handled again after a crash starts from that, not from what its first try saved.
# KEYS: the state, the update's steps; ARGV: the new state, its ttl, the step, the steps' ttl.
_SAVE_KEEPING_BEFORE = """
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 0 then
  redis.call('HSET', KEYS[2], ARGV[3], redis.call('GET', KEYS[1]) or '')
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


class DialogStates:
    """Conversation states and shown searches in Redis, expiring with the conversation log.

    Handling an update again after a crash does what handling it once would have done: it starts from the state
    as it was before the update (``load(..., before_this_update=True)``), and its searches keep their ids.
    """

    def __init__(self, redis: aioredis.Redis, retention: timedelta, search_ttl: timedelta = timedelta(days=2)) -> None:
        self._redis = redis
        self._retention = int(retention.total_seconds())
        self._search_ttl = int(search_ttl.total_seconds())
        self._save_keeping_before = redis.register_script(_SAVE_KEEPING_BEFORE)

    async def load(self, chat_id: int, *, before_this_update: bool = False) -> ConversationState:
        """The conversation's state; ``before_this_update``: as it was before the update being handled changed it
        (the same for the update's first try and for its handling again after a crash), when this try has not
        read it yet (a second read in the same try sees what the first one led to)."""
        update = current_handling()
        if before_this_update and update is not None and update.first_time(f"state-load:{chat_id}"):
            async with self._redis.pipeline(transaction=False) as pipe:  # one round trip for both
                pipe.hget(update.key, f"state-before:{chat_id}")
                pipe.get(keys.conversation_state(chat_id))
                before, now = await pipe.execute()
            raw = now if before is None else before
        else:
            raw = await self._redis.get(keys.conversation_state(chat_id))
        if not raw:
            return ConversationState()
        known = ConversationState.__dataclass_fields__
        return ConversationState(**{k: v for k, v in json.loads(raw).items() if k in known})

    async def save(self, chat_id: int, state: ConversationState) -> None:
        key, value = keys.conversation_state(chat_id), json.dumps(asdict(state))
        update = current_handling()
        if update is None:
            await self._redis.set(key, value, ex=self._retention)
            return
        await self._save_keeping_before(
            keys=[key, update.key], args=[value, self._retention, f"state-before:{chat_id}", update.ttl]
        )

    async def remember_search(self, chat_id: int, search: ShownSearch) -> str:
        update = current_handling()
        if update is None:
            search_id = secrets.token_urlsafe(6)
        else:  # the same id when the update is handled again: the buttons already sent point to it
            seed = f"{update.key}:{update.step(f'search:{chat_id}')}".encode()
            search_id = base64.urlsafe_b64encode(hashlib.sha256(seed).digest()[:6]).decode()
        await self._redis.set(
            keys.search(chat_id, search_id), json.dumps(asdict(search), ensure_ascii=False), ex=self._search_ttl
        )
        return search_id

    async def search(self, chat_id: int, search_id: str) -> ShownSearch | None:
        raw = await self._redis.get(keys.search(chat_id, search_id))
        return ShownSearch(**json.loads(raw)) if raw else None

    async def update_search(self, chat_id: int, search_id: str, search: ShownSearch) -> None:
        await self._redis.set(
            keys.search(chat_id, search_id), json.dumps(asdict(search), ensure_ascii=False), ex=self._search_ttl
        )

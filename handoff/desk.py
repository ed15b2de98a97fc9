"""The hand-off desk: tickets from opening to closing, and who holds what.

Everything lives in Redis, so it survives restarts and is shared by every bot process. Taking a ticket is one
Lua script: of two agents who take the same ticket at the same moment, exactly one gets it and the other
learns who has it. Its parts, each in its own module: the queue's order and waits (``desk.queue``,
``handoff.queue``), who is on shift (``desk.shifts``, ``handoff.shifts``), agents' notes (``desk.notes``,
``handoff.notes``); the people of the desk are the roster (``handoff.roster``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from bot.core.conversation import Turn
from bot.core.redis_values import fields_of, optional_text, text_map, texts
from handoff import keys
from handoff.notes import TicketNotes
from handoff.queue import TicketQueue
from handoff.roster import Roster
from handoff.shifts import Shifts
from handoff.tickets import Outcome, Reason, Ticket, TicketRequest, TicketState
from kb_index.errors import ZabotaError

__all__ = ["HandoffDesk", "OpenedTicket", "TakeResult", "TicketNotFound"]


class TicketNotFound(ZabotaError, LookupError):
    """No such ticket, or it is not in the state the operation needs."""


@dataclass(frozen=True)
class OpenedTicket:
    ticket: Ticket
    created: bool  # False: the customer already had an open ticket


@dataclass(frozen=True)
class TakeResult:
    ok: bool
    ticket: Ticket | None
    holder_id: int = 0  # when not ok: who has it
    holder_name: str = ""
    reason: str = ""  # "taken", "closed", "missing", "full"


_TAKE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', '', ''} end
if state ~= 'waiting' then
  return {state == 'closed' and 'closed' or 'taken',
          redis.call('HGET', KEYS[1], 'agent_id') or '', redis.call('HGET', KEYS[1], 'agent_name') or ''}
end
if tonumber(ARGV[5]) > 0 and redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[5]) then return {'full', '', ''} end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'assigned', 'agent_id', ARGV[2], 'agent_name', ARGV[3], 'taken_at', ARGV[4],
           'given', ARGV[6])
redis.call('SADD', KEYS[3], ARGV[1])
local since = tonumber(redis.call('HGET', KEYS[1], 'waiting_since') or ARGV[4])
redis.call('LPUSH', KEYS[4], tostring(tonumber(ARGV[4]) - since))
redis.call('LTRIM', KEYS[4], 0, 49)
return {'ok', ARGV[2], ARGV[3]}
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'assigned' then return 0 end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'agent_id') ~= ARGV[2] then return 0 end
local agent = redis.call('HGET', KEYS[1], 'agent_id')
redis.call('SREM', ARGV[3] .. agent .. ':tickets', ARGV[1])
if redis.call('GET', ARGV[3] .. agent .. ':active') == ARGV[1] then redis.call('DEL', ARGV[3] .. agent .. ':active') end
redis.call('HSET', KEYS[1], 'state', 'waiting', 'agent_id', '0', 'agent_name', '', 'previous_agent', agent)
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
"""

_CLOSE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then return 0 end
local agent = redis.call('HGET', KEYS[1], 'agent_id') or '0'
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', ARGV[5] .. agent .. ':tickets', ARGV[1])
if redis.call('GET', ARGV[5] .. agent .. ':active') == ARGV[1] then redis.call('DEL', ARGV[5] .. agent .. ':active') end
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
redis.call('HSET', KEYS[1], 'state', 'closed', 'closed_at', ARGV[2], 'outcome', ARGV[3], 'closed_by', ARGV[4])
redis.call('HINCRBY', KEYS[4], 'closed:' .. ARGV[3], 1)
return 1
"""

_TRANSFER = """
if redis.call('HGET', KEYS[1], 'state') ~= 'assigned' then return 0 end
local from = redis.call('HGET', KEYS[1], 'agent_id')
if ARGV[2] ~= '' and from ~= ARGV[2] then return 0 end
redis.call('SREM', ARGV[5] .. from .. ':tickets', ARGV[1])
if redis.call('GET', ARGV[5] .. from .. ':active') == ARGV[1] then redis.call('DEL', ARGV[5] .. from .. ':active') end
redis.call('SADD', ARGV[5] .. ARGV[3] .. ':tickets', ARGV[1])
redis.call('HSET', KEYS[1], 'agent_id', ARGV[3], 'agent_name', ARGV[4], 'previous_agent', from, 'given', 'False')
return 1
"""


class HandoffDesk:
    """Tickets and who holds them, in Redis, with the queue, the shifts and the notes as parts."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        max_tickets_per_agent: int = 3,
        default_wait: float = 600.0,
        repeat_window: float = 7 * 24 * 3600,
        context_ttl: float = 90 * 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self.shifts = Shifts(redis, clock=clock)
        self.queue = TicketQueue(redis, self.shifts, default_wait=default_wait, clock=clock)
        self.notes = TicketNotes(redis, clock=clock)
        self.max_tickets_per_agent = max_tickets_per_agent
        self.repeat_window = repeat_window
        self._context_ttl = int(context_ttl)
        self._clock = clock
        self._roster = Roster(redis)  # agents added by an admin may hold tickets too
        self._take = redis.register_script(_TAKE)
        self._release = redis.register_script(_RELEASE)
        self._close = redis.register_script(_CLOSE)
        self._transfer = redis.register_script(_TRANSFER)

    # ------------------------------------------------------------------ customers

    async def open(self, request: TicketRequest) -> OpenedTicket:
        """The customer's open ticket, or a new one at the back of his priority level."""
        existing = await self.open_ticket_of(request.chat_id)
        if existing is not None:
            return OpenedTicket(existing, created=False)
        number = await self._redis.incr(keys.SEQUENCE)
        ticket_id = f"T{number}"
        # Whoever sets the customer's pointer first owns the hand-off; a concurrent second request reuses it.
        if not await self._redis.set(keys.customer(request.chat_id), ticket_id, nx=True):
            # The winner may not have written its ticket yet: wait for it rather than open a second one. A pointer
            # whose ticket never appears (its process died in between) or is closed is taken over.
            for _ in range(50):
                holder = optional_text(await self._redis.get(keys.customer(request.chat_id)))
                held = await self.get(holder) if holder else None
                if held is not None:
                    if held.is_open:
                        return OpenedTicket(held, created=False)
                    break
                await asyncio.sleep(0.02)
            await self._redis.set(keys.customer(request.chat_id), ticket_id)
        now = self._clock()
        repeat = await self._is_repeat_contact(request.chat_id, now)
        priority = 1 if (request.frustration or request.reason is Reason.FRUSTRATION or repeat) else 0
        ticket = Ticket(
            id=ticket_id,
            chat_id=request.chat_id,
            user_id=request.user_id,
            customer_name=request.customer_name,
            username=request.username,
            lang=request.lang,
            state=TicketState.WAITING,
            reason=request.reason,
            priority=priority,
            question=request.question,
            frustration=request.frustration,
            repeat_contact=repeat,
            created_at=now,
            waiting_since=now,
            channel=request.channel,
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.ticket(ticket_id), mapping=fields_of(ticket.to_redis()))
            if request.context:
                pipe.rpush(keys.context(ticket_id), *request.context)
                pipe.expire(keys.context(ticket_id), self._context_ttl)
            pipe.zadd(keys.QUEUE, {ticket_id: self.queue.score(ticket)})
            pipe.hincrby(keys.STATS, "opened", 1)
            pipe.lpush(keys.customer_history(request.chat_id), ticket_id)
            pipe.ltrim(keys.customer_history(request.chat_id), 0, 49)
            await pipe.execute()
        return OpenedTicket(ticket, created=True)

    async def _is_repeat_contact(self, chat_id: int, now: float) -> bool:
        for ticket_id in texts(await self._redis.lrange(keys.customer_history(chat_id), 0, 4)):
            created = await self._redis.hget(keys.ticket(ticket_id), "created_at")
            if created and now - float(created) < self.repeat_window:
                return True
        return False

    async def get(self, ticket_id: str) -> Ticket | None:
        data = await self._redis.hgetall(keys.ticket(ticket_id))
        return Ticket.from_redis(text_map(data)) if data else None

    async def get_many(self, ticket_ids: Sequence[str]) -> list[Ticket]:
        """The tickets that exist among ``ticket_ids``, in that order, read in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for ticket_id in ticket_ids:
                pipe.hgetall(keys.ticket(ticket_id))
            found = await pipe.execute()
        return [Ticket.from_redis(text_map(data)) for data in found if data]

    async def tickets_since(self, since: float, most: int = 20_000) -> list[Ticket]:
        """Tickets opened since ``since``, newest first (the latest ``most`` at the very most)."""
        newest = int(await self._redis.get(keys.SEQUENCE) or 0)
        found: list[Ticket] = []
        for top in range(newest, max(0, newest - most), -500):
            batch = await self.get_many([f"T{n}" for n in range(top, max(0, top - 500), -1)])
            found += [ticket for ticket in batch if ticket.created_at >= since]
            if batch and all(ticket.created_at < since for ticket in batch):
                break
        return found

    async def require(self, ticket_id: str) -> Ticket:
        ticket = await self.get(ticket_id)
        if ticket is None:
            raise TicketNotFound(f"there is no ticket {ticket_id}")
        return ticket

    async def open_ticket_of(self, chat_id: int) -> Ticket | None:
        ticket_id = optional_text(await self._redis.get(keys.customer(chat_id)))
        if not ticket_id:
            return None
        ticket = await self.get(ticket_id)
        return ticket if ticket is not None and ticket.is_open else None

    async def customer_history(self, chat_id: int, limit: int = 5, exclude: str = "") -> list[Ticket]:
        tickets = []
        for ticket_id in texts(await self._redis.lrange(keys.customer_history(chat_id), 0, limit)):
            if ticket_id != exclude and (ticket := await self.get(ticket_id)) is not None:
                tickets.append(ticket)
        return tickets[:limit]

    async def context(self, ticket_id: str) -> list[Turn]:
        """What happened before the hand-off (the bot's turns) and since, oldest first."""
        return [Turn.from_json(raw) for raw in await self._redis.lrange(keys.context(ticket_id), 0, -1)]

    async def append_turn(self, ticket_id: str, turn: Turn) -> None:
        """Something said or done while the ticket is open, after the turns the bot handed over with it."""
        await self._redis.rpush(keys.context(ticket_id), turn.to_json())

    async def update(self, ticket_id: str, **values: object) -> None:
        await self._redis.hset(keys.ticket(ticket_id), mapping={k: str(v) for k, v in values.items()})

    # ------------------------------------------------------------------ the queue

    async def waiting(self, limit: int = 50) -> list[Ticket]:
        """The next ``limit`` tickets to be taken, the next first."""
        return await self.get_many(await self.queue.head(limit))

    async def counts(self) -> dict[str, int]:
        """Tickets by state across all processes: waiting, assigned, and closed by outcome ("closed:resolved")."""
        # going offline releases tickets; an agent added by an admin may hold some (a transfer to him)
        holders = set(await self.shifts.on_shift()) | await self._roster.added_agents()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.STATS)
            pipe.zcard(keys.QUEUE)
            for agent_id in sorted(holders):
                pipe.scard(keys.agent_tickets(agent_id))
            stats, waiting, *held = await pipe.execute()
        closed = {k: int(v) for k, v in stats.items() if k.startswith("closed:")}
        return {"waiting": int(waiting), "assigned": sum(int(n) for n in held), **closed}

    # ------------------------------------------------------------------ agents

    async def take(self, ticket_id: str, agent_id: int, agent_name: str, *, given: bool = False) -> TakeResult:
        """The agent takes a waiting ticket; ``given``: it is given to him (auto-assignment), he has not yet
        accepted it by answering."""
        status, holder, holder_name = await self._take(
            keys=[keys.ticket(ticket_id), keys.QUEUE, keys.agent_tickets(agent_id), keys.WAITS],
            args=[ticket_id, agent_id, agent_name, self._clock(), self.max_tickets_per_agent, str(given)],
        )
        ticket = await self.get(ticket_id)
        if status == "ok":
            await self._redis.set(keys.agent_active(agent_id), ticket_id)
            return TakeResult(True, ticket)
        return TakeResult(False, ticket, int(holder or 0), holder_name or "", status)

    async def take_next(self, agent_id: int, agent_name: str) -> TakeResult | None:
        """The most urgent waiting ticket for this agent; None when the queue is empty."""
        for _ in range(10):  # another agent may take the head at the same moment: try the next one
            head = texts(await self._redis.zrange(keys.QUEUE, 0, 0))
            if not head:
                return None
            result = await self.take(head[0], agent_id, agent_name)
            if result.ok or result.reason == "full":
                return result
        return None

    async def release(self, ticket_id: str, agent_id: int | None = None) -> Ticket:
        """Back to the queue, keeping the place its waiting time earned."""
        ticket = await self.require(ticket_id)
        ok = await self._release(
            keys=[keys.ticket(ticket_id), keys.QUEUE],
            args=[ticket_id, "" if agent_id is None else agent_id, keys.AGENT_PREFIX, self.queue.score(ticket)],
        )
        if not ok:
            raise TicketNotFound(f"ticket {ticket_id} is not held by that agent")
        return await self.require(ticket_id)

    async def pass_over(self, ticket_id: str, agent_id: int) -> Ticket:
        """A ticket given to an agent who did not accept it goes back to the queue, remembered as passed over by
        him (``passed_over``), so that it is given to someone else next."""
        released = await self.release(ticket_id, agent_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.passed_over(ticket_id), str(agent_id))
            pipe.expire(keys.passed_over(ticket_id), self._context_ttl)
            await pipe.execute()
        return released

    async def passed_over(self, ticket_id: str) -> set[int]:
        return {int(agent) for agent in texts(await self._redis.smembers(keys.passed_over(ticket_id)))}

    async def forget_passed_over(self, ticket_id: str) -> None:
        await self._redis.delete(keys.passed_over(ticket_id))

    async def close(self, ticket_id: str, outcome: Outcome, closed_by: str) -> Ticket:
        ticket = await self.require(ticket_id)
        ok = await self._close(
            keys=[keys.ticket(ticket_id), keys.QUEUE, keys.customer(ticket.chat_id), keys.STATS],
            args=[ticket_id, self._clock(), outcome.value, closed_by, keys.AGENT_PREFIX],
        )
        if not ok:
            raise TicketNotFound(f"ticket {ticket_id} is already closed")
        return await self.require(ticket_id)

    async def transfer(self, ticket_id: str, to_agent: int, to_name: str, from_agent: int | None = None) -> Ticket:
        ok = await self._transfer(
            keys=[keys.ticket(ticket_id)],
            args=[ticket_id, "" if from_agent is None else from_agent, to_agent, to_name, keys.AGENT_PREFIX],
        )
        if not ok:
            raise TicketNotFound(f"ticket {ticket_id} is not held by that agent")
        await self._redis.set(keys.agent_active(to_agent), ticket_id)
        return await self.require(ticket_id)

    async def agent_tickets(self, agent_id: int) -> list[Ticket]:
        held = await self.get_many(sorted(texts(await self._redis.smembers(keys.agent_tickets(agent_id)))))
        return [ticket for ticket in held if ticket.state is TicketState.ASSIGNED]

    async def active_ticket(self, agent_id: int) -> Ticket | None:
        """The ticket an agent's plain messages go to: his chosen one, or his only one."""
        ticket_id = optional_text(await self._redis.get(keys.agent_active(agent_id)))
        if ticket_id:
            ticket = await self.get(ticket_id)
            if ticket is not None and ticket.state is TicketState.ASSIGNED and ticket.agent_id == agent_id:
                return ticket
        held = await self.agent_tickets(agent_id)
        return held[0] if len(held) == 1 else None

    async def set_active(self, agent_id: int, ticket_id: str) -> Ticket:
        ticket = await self.require(ticket_id)
        if ticket.state is not TicketState.ASSIGNED or ticket.agent_id != agent_id:
            raise TicketNotFound(f"ticket {ticket_id} is not yours")
        await self._redis.set(keys.agent_active(agent_id), ticket_id)
        return ticket

    async def release_all(self, agent_id: int) -> list[Ticket]:
        """Every ticket the agent holds back to the queue (he left his shift or the desk); returns them."""
        return [await self.release(ticket.id, agent_id) for ticket in await self.agent_tickets(agent_id)]

    # ------------------------------------------------------------------ while a ticket is open

    async def once_per(self, ticket_id: str, name: str, seconds: float) -> bool:
        """True at most once per ``seconds`` for this ticket and ``name`` (to keep notices from repeating)."""
        return bool(await self._redis.set(keys.ticket_once(ticket_id, name), "1", nx=True, ex=max(1, int(seconds))))

    async def mark(self, ticket_id: str, *, agent_reply: bool = False, customer_message: bool = False) -> None:
        now = self._clock()
        values: dict[FieldT, EncodableT] = {}
        if agent_reply:
            values["last_agent_at"] = str(now)
            ticket = await self.get(ticket_id)
            if ticket is not None and not ticket.first_reply_at:
                values["first_reply_at"] = str(now)
        if agent_reply:
            values["unread"] = "0"
        if customer_message:
            values["last_customer_at"] = str(now)
        async with self._redis.pipeline(transaction=True) as pipe:
            if values:
                pipe.hset(keys.ticket(ticket_id), mapping=values)
            if customer_message:
                pipe.hincrby(keys.ticket(ticket_id), "unread", 1)
                pipe.hincrby(keys.STATS, "customer_messages", 1)  # inboxes showing unread counts look again
            await pipe.execute()

    async def read(self, ticket_id: str) -> None:
        """The agent holding the ticket has read it (opened it in the workplace): nothing unread."""
        await self._redis.hset(keys.ticket(ticket_id), "unread", "0")

"""Background watch over the queue: the agents' board, supervisors' alerts, customers' status, silence.

One pass every few seconds (only in the process that holds the monitor lease, so several bot processes do
not repeat one another):
- the queue board in the agents' group is one message edited in place, and only when what it shows changed,
  at most once per ``board_interval`` (Telegram allows 20 messages a minute into a group);
- a ticket waiting longer than the alert time is reported to the supervisors once;
- a waiting customer's "you are number N" message is edited when his place improved, at most once a minute;
- a ticket whose customer has not answered the agent for the silence time is closed with a notice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import redis.asyncio as aioredis

from handoff import keys
from handoff.durations import format_duration, format_wait_estimate
from handoff.lease import Lease, run_periodically
from handoff.ports import CustomerChannel
from handoff.tickets import Ticket, TicketState
from handoff.workspace import AgentWorkspace

__all__ = ["QueueMonitor"]

log = logging.getLogger(__name__)


class QueueMonitor:
    def __init__(
        self,
        redis: aioredis.Redis,
        workspace: AgentWorkspace,
        customers: CustomerChannel,
        *,
        agents_chat_id: int | None,
        supervisor_ids: Sequence[int],
        wait_alert_seconds: float,
        silence_seconds: float,
        board_interval: float = 10.0,
        status_interval: float = 60.0,
        tick: float = 2.0,
        board_lang: str = "ru",
        clock: Callable[[], float] = time.time,
        each_pass: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """``each_pass``: more work for every pass (giving out waiting tickets, ``handoff.assign``)."""
        self._redis = redis
        self.workspace = workspace
        self.customers = customers
        self.desk = workspace.desk
        self.agents_chat_id = agents_chat_id
        self.supervisor_ids = list(supervisor_ids)
        self.wait_alert_seconds = wait_alert_seconds
        self.silence_seconds = silence_seconds
        self.board_interval = board_interval
        self.status_interval = status_interval
        self.tick = tick
        self.board_lang = board_lang
        self._clock = clock
        self._each_pass = each_pass
        self._lease = Lease(redis, keys.MONITOR_LEASE, tick * 5)
        self.board_edits = 0

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """One pass every ``tick`` seconds, in the one process that holds the monitor lease."""
        await run_periodically(
            "queue monitor", self.check_once, self._lease, stop or asyncio.Event(), self.tick
        )

    async def check_once(self) -> None:
        if self._each_pass is not None:
            await self._each_pass()
        waiting = await self.desk.waiting(1000)
        now = self._clock()
        await self._board(waiting, now)
        await self._alerts(waiting, now)
        await self._statuses(waiting, now)
        await self._silence(now)

    # ------------------------------------------------------------------ board

    def board_text(self, waiting: int, longest: float, online: int, now: float) -> str:
        t, lang = self.workspace.texts, self.board_lang
        zone = datetime.fromtimestamp(now, UTC)
        return t.get(lang, "board", waiting=waiting, longest=format_duration(longest, t, lang), online=online,
                     updated=f"{zone:%H:%M} UTC")

    async def _board(self, waiting: list[Ticket], now: float) -> None:
        if self.agents_chat_id is None:
            return
        state = await self._redis.hgetall(keys.BOARD)
        if state.get("updated") and now - float(state["updated"]) < self.board_interval:
            return
        longest = max((now - x.waiting_since for x in waiting), default=0.0)
        # What the board shows, rounded to what a person reads, decides whether it is edited at all.
        content = (len(waiting), int(longest // 60), len(await self.desk.shifts.on_shift()))
        if state.get("content") == repr(content):
            return
        text = self.board_text(content[0], longest, content[2], now)
        message_id = await self.workspace.staff.show_board(
            self.agents_chat_id, text, int(state.get("message_id") or 0)
        )
        if not message_id:
            return  # the group cannot be reached now; tried again at the next pass
        self.board_edits += 1
        await self._redis.hset(keys.BOARD, mapping={"message_id": message_id, "content": repr(content), "updated": now})

    # ------------------------------------------------------------------ supervisors

    async def _alerts(self, waiting: list[Ticket], now: float) -> None:
        supervisors = sorted({*self.supervisor_ids, *await self.workspace.directory.supervisors()})
        if not supervisors:
            return
        online = len(await self.desk.shifts.on_shift())
        for ticket in waiting:
            waited = now - ticket.waiting_since
            if waited < self.wait_alert_seconds:
                continue
            flag = f"{keys.ticket(ticket.id)}:alerted"
            if not await self._redis.set(flag, "1", nx=True, ex=7 * 24 * 3600):
                continue
            for supervisor in supervisors:
                lang = await self.workspace.agent_lang(supervisor)
                await self.workspace.tell_agent(
                    supervisor, "alert_waiting", ticket=ticket.id, name=ticket.customer_name,
                    waited=format_duration(waited, self.workspace.texts, lang), online=online,
                )

    # ------------------------------------------------------------------ customers

    async def _statuses(self, waiting: list[Ticket], now: float) -> None:
        for position, ticket in enumerate(waiting, start=1):
            if not ticket.status_message_id or not ticket.status_position:
                if ticket.status_message_id:
                    await self.desk.update(ticket.id, status_position=position)
                continue
            if position >= ticket.status_position:
                continue  # only a better place is news worth an edit
            last = float(await self._redis.hget(keys.ticket(ticket.id), "status_edited_at") or 0)
            if now - last < self.status_interval:
                continue
            texts = self.workspace.customer_texts
            eta = format_wait_estimate(await self.desk.queue.estimate_wait(position), texts, ticket.lang)
            await self.customers.edit(
                ticket.chat_id, ticket.status_message_id,
                texts.get(ticket.lang, "handoff_status", position=position, eta=eta),
            )
            await self.desk.update(ticket.id, status_position=position, status_edited_at=now)

    async def _silence(self, now: float) -> None:
        for agent_id in await self.workspace.directory.agents():
            for ticket in await self.desk.agent_tickets(agent_id):
                if ticket.state is not TicketState.ASSIGNED or not ticket.last_agent_at:
                    continue
                if ticket.last_customer_at >= ticket.last_agent_at:
                    continue  # the customer answered the agent's last message; the agent owes the reply
                if now - ticket.last_agent_at >= self.silence_seconds:
                    await self.workspace.close_silent(ticket, self.silence_seconds / 60)

"""Auto-assignment (HANDOFF_AUTO_ASSIGN): waiting tickets given to agents on shift, without anyone pressing Take.

The most urgent waiting ticket goes to the agent on shift with room under HANDOFF_MAX_TICKETS_PER_AGENT who holds
the fewest tickets (of those, the one on shift longest). It runs when a ticket opens or is released and when one
closes (room for the next), and on the queue monitor's pass (an agent who came on shift). The desk's take is
atomic, so several processes assigning at once give each ticket to one agent; an agent going off shift hands his
tickets back to the queue, and they are given out again.

A given ticket is the agent's to accept by answering the customer: one left unanswered for
HANDOFF_ACCEPT_MINUTES goes back to the queue (the customer is told his place) and on to another agent; it comes
back to one who let it go only when every agent on shift has.
"""

from __future__ import annotations

import logging

from handoff.desk import HandoffDesk
from handoff.tickets import Ticket
from handoff.workspace import AgentWorkspace

__all__ = ["AutoAssign"]

log = logging.getLogger(__name__)


class AutoAssign:
    def __init__(
        self, desk: HandoffDesk, workspace: AgentWorkspace, *, enabled: bool, accept_seconds: float = 300.0
    ) -> None:
        """``accept_seconds``: how long a given ticket may stay unanswered before it goes back (0: for ever)."""
        self.desk = desk
        self.workspace = workspace
        self.enabled = enabled
        self.accept_seconds = accept_seconds

    async def ticket_changed(self, ticket: Ticket) -> None:
        """A ticket opened, released or closed: the queue may have work, or an agent room."""
        await self.fill()

    async def each_pass(self) -> None:
        """The queue monitor's pass: unaccepted tickets back to the queue, then the queue given out."""
        if not self.enabled:
            return
        await self.take_back_unaccepted()
        await self.fill()

    async def take_back_unaccepted(self) -> list[Ticket]:
        """Tickets given longer than ``accept_seconds`` ago and still unanswered, put back in the queue."""
        if not self.enabled or self.accept_seconds <= 0:
            return []
        now = self.workspace.now()
        returned = []
        for agent_id in await self.desk.shifts.on_shift():
            for ticket in await self.desk.agent_tickets(agent_id):
                if ticket.accepted or now - ticket.taken_at < self.accept_seconds:
                    continue
                try:
                    returned.append(await self.workspace.not_accepted(agent_id, ticket, self.accept_seconds))
                except LookupError:
                    continue  # answered, closed or moved in the meantime
                log.info("ticket %s back in the queue: agent %s did not answer it", ticket.id, agent_id)
        return returned

    async def fill(self) -> int:
        """Give out waiting tickets while an agent on shift has room; how many were given."""
        if not self.enabled:
            return 0
        given = 0
        for ticket in await self.desk.waiting(50):
            agent_id = await self._freest_agent(ticket)
            if agent_id is None:
                continue  # nobody has room, or everyone with room let this one go: the next may still fit
            name = await self.workspace.display_name(agent_id)
            result = await self.desk.take(ticket.id, agent_id, name, given=True)
            if not result.ok or result.ticket is None:
                continue  # taken meanwhile (another process): the next one
            await self.workspace.took(agent_id, result.ticket)
            log.info("ticket %s given to agent %s", ticket.id, agent_id)
            given += 1
        return given

    async def _freest_agent(self, ticket: Ticket) -> int | None:
        """The agent on shift with room and the fewest tickets, preferring those who have not let it go."""
        room = []
        online = await self.desk.shifts.on_shift()
        for agent_id, since in online.items():
            held = len(await self.desk.agent_tickets(agent_id))
            if held < self.desk.max_tickets_per_agent:
                room.append((held, since, agent_id))
        if not room:
            return None
        passed = await self.desk.passed_over(ticket.id) if self.accept_seconds > 0 else set()
        fresh = [candidate for candidate in room if candidate[2] not in passed]
        if fresh:
            return min(fresh)[2]
        if passed >= set(online):
            # Every agent on shift has let it go once: it goes round again rather than wait for ever.
            await self.desk.forget_passed_over(ticket.id)
            return min(room)[2]
        return None

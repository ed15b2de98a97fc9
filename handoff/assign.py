"""Auto-assignment (HANDOFF_AUTO_ASSIGN): waiting tickets given to agents on shift, without anyone pressing Take.

The most urgent waiting ticket goes to the agent on shift with room under HANDOFF_MAX_TICKETS_PER_AGENT who holds
the fewest tickets (of those, the one on shift longest). It runs when a ticket opens or is released and when one
closes (room for the next), and on the queue monitor's tick (an agent who came on shift). The desk's take is
atomic, so several processes assigning at once give each ticket to one agent; an agent going off shift hands his
tickets back to the queue, and they are given out again.
"""

from __future__ import annotations

import logging

from handoff.desk import HandoffDesk
from handoff.tickets import Ticket
from handoff.workspace import AgentWorkspace

__all__ = ["AutoAssign"]

log = logging.getLogger(__name__)


class AutoAssign:
    def __init__(self, desk: HandoffDesk, workspace: AgentWorkspace, *, enabled: bool) -> None:
        self.desk = desk
        self.workspace = workspace
        self.enabled = enabled

    async def ticket_changed(self, ticket: Ticket) -> None:
        """A ticket opened, released or closed: the queue may have work, or an agent room."""
        await self.fill()

    async def fill(self) -> int:
        """Give out waiting tickets while an agent on shift has room; how many were given."""
        if not self.enabled:
            return 0
        given = 0
        for ticket in await self.desk.waiting(50):
            agent_id = await self._freest_agent()
            if agent_id is None:
                break
            result = await self.desk.take(ticket.id, agent_id, await self.workspace.display_name(agent_id))
            if not result.ok or result.ticket is None:
                continue  # taken meanwhile (another process): the next one
            await self.workspace.took(agent_id, result.ticket)
            log.info("ticket %s given to agent %s", ticket.id, agent_id)
            given += 1
        return given

    async def _freest_agent(self) -> int | None:
        room = []
        for agent_id, since in (await self.desk.online_agents()).items():
            held = len(await self.desk.agent_tickets(agent_id))
            if held < self.desk.max_tickets_per_agent:
                room.append((held, since, agent_id))
        return min(room)[2] if room else None

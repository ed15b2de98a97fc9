"""What happens to tickets, for whoever wants to know.

The desk's parties (the customer's side, the relay, the workspace, the surveys) do not hold one another: each
publishes what happened here, and the composition root subscribes each party once. A subscriber that fails is
logged and the others still hear of it (a survey that cannot be sent does not undo a close).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from handoff.tickets import Ticket

__all__ = ["HandoffEvents"]

log = logging.getLogger(__name__)

TicketEvent = Callable[[Ticket], Awaitable[None]]
# (what the message was tracked as, its message id or 0, "" or "blocked" or "refused")
DeliveredEvent = Callable[[str, int, str], Awaitable[None]]


@dataclass
class HandoffEvents:
    ticket_opened: list[TicketEvent] = field(default_factory=list)  # a new ticket waits for an agent
    waiting_message: list[TicketEvent] = field(default_factory=list)  # its customer wrote while waiting
    closed_by_customer: list[TicketEvent] = field(default_factory=list)  # he found the answer himself
    ticket_closed: list[TicketEvent] = field(default_factory=list)  # closed: by an agent, by silence, by him
    delivered: list[DeliveredEvent] = field(default_factory=list)  # the relay delivered a tracked message

    async def opened(self, ticket: Ticket) -> None:
        await _each(self.ticket_opened, "ticket opened", ticket.id, ticket)

    async def customer_wrote_while_waiting(self, ticket: Ticket) -> None:
        await _each(self.waiting_message, "waiting message", ticket.id, ticket)

    async def cancelled_by_customer(self, ticket: Ticket) -> None:
        await _each(self.closed_by_customer, "closed by the customer", ticket.id, ticket)

    async def closed(self, ticket: Ticket) -> None:
        await _each(self.ticket_closed, "ticket closed", ticket.id, ticket)

    async def was_delivered(self, track: str, message_id: int, error: str) -> None:
        for callback in self.delivered:
            try:
                await callback(track, message_id, error)
            except Exception:
                log.exception("after delivering %s", track)


async def _each(callbacks: list[TicketEvent], what: str, ticket_id: str, ticket: Ticket) -> None:
    for callback in callbacks:
        try:
            await callback(ticket)
        except Exception:
            log.exception("%s: %s", what, ticket_id)

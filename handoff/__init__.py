"""Human hand-off: tickets, the agents' queue, and the relay between customers and agents.

The core (``HandoffDesk``) is a plain library over Redis; the Telegram handlers for agents sit at its edge.
"""

from handoff.desk import HandoffDesk, OpenedTicket, TakeResult, TicketNotFound
from handoff.hours import WorkingHours
from handoff.tickets import Outcome, Reason, Ticket, TicketRequest, TicketState

__all__ = [
    "HandoffDesk",
    "OpenedTicket",
    "Outcome",
    "Reason",
    "TakeResult",
    "Ticket",
    "TicketNotFound",
    "TicketRequest",
    "TicketState",
    "WorkingHours",
]

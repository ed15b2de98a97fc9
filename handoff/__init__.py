"""Human hand-off: tickets, the agents' queue, and the relay between customers and agents, on any channel.

A plain library over Redis that knows no channel: the desk (``HandoffDesk``: tickets and the queue), the
relay's durable outbox (``handoff.relay``), what agents do (``handoff.workspace``), the queue monitor, the
customer's side of a hand-off (``handoff.customer``, the dialog's ``HandoffPort``), and what happens to tickets
(``handoff.events``). What it needs from a channel is in ``handoff.ports``; Telegram's side of it is in
``bot.telegram`` (the agents' router, ``staff``, ``delivery``).
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

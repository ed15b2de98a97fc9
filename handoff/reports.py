"""What the desk's own records say about a period: hand-offs by reason and channel, and each agent's speed.

First response: from the ticket's wait starting to the agent's first answer; handling: from taking it to closing
it; both p50 and p90 over the tickets an agent closed. Built from the tickets themselves, so any channel's agents
and customers count alike.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from handoff.tickets import Ticket

__all__ = ["AgentSpeed", "TicketReport", "percentile", "ticket_report"]


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` 0.5: the median); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class AgentSpeed:
    closed: int = 0
    first_response: list[float] = field(default_factory=list)
    handling: list[float] = field(default_factory=list)


@dataclass
class TicketReport:
    opened: int
    by_reason: Counter[str]
    by_channel: Counter[str]
    by_outcome: Counter[str]
    agents: dict[str, AgentSpeed]


def ticket_report(tickets: Iterable[Ticket]) -> TicketReport:
    by_reason: Counter[str] = Counter()
    by_channel: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    agents: dict[str, AgentSpeed] = defaultdict(AgentSpeed)
    opened = 0
    for ticket in tickets:
        opened += 1
        by_reason[ticket.reason.value] += 1
        by_channel[ticket.channel] += 1
        if ticket.outcome:
            by_outcome[ticket.outcome] += 1
        if not ticket.agent_name or not ticket.closed_at:
            continue
        speed = agents[ticket.agent_name]
        speed.closed += 1
        if ticket.first_reply_at and ticket.waiting_since:
            speed.first_response.append(ticket.first_reply_at - ticket.waiting_since)
        if ticket.taken_at:
            speed.handling.append(ticket.closed_at - ticket.taken_at)
    return TicketReport(opened, by_reason, by_channel, by_outcome, dict(agents))

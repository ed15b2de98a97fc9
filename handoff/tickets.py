"""Tickets: one per hand-off, from the moment the bot passes a customer to a person until it closes."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum

from bot.core.ports import HandoffReason

__all__ = ["Outcome", "Reason", "Ticket", "TicketRequest", "TicketState"]


class TicketState(StrEnum):
    WAITING = "waiting"  # in the queue
    ASSIGNED = "assigned"  # an agent has it
    CLOSED = "closed"


# Why a customer was handed to a person: the dialog's reasons, one type for both.
Reason = HandoffReason


class Outcome(StrEnum):
    RESOLVED = "resolved"  # the agent solved it
    UNRESOLVED = "unresolved"  # closed without a solution
    CUSTOMER_RESOLVED = "customer_resolved"  # the customer found the answer and cancelled
    CUSTOMER_SILENT = "customer_silent"  # the customer stopped answering the agent


@dataclass(frozen=True)
class TicketRequest:
    """What the bot knows when it hands a customer off."""

    chat_id: int
    user_id: int
    customer_name: str
    lang: str
    reason: Reason
    question: str = ""
    username: str = ""
    frustration: tuple[str, ...] = ()
    context: tuple[str, ...] = ()  # the conversation log's turns, as JSON
    channel: str = "telegram"  # where the customer writes from: a ``bot.core.channels.Channel`` value


@dataclass
class Ticket:
    id: str
    chat_id: int
    user_id: int
    customer_name: str
    lang: str
    state: TicketState
    reason: Reason
    priority: int = 0  # 1: frustrated customer or a repeat contact; served first
    question: str = ""
    username: str = ""
    frustration: tuple[str, ...] = ()
    repeat_contact: bool = False
    created_at: float = 0.0
    waiting_since: float = 0.0
    taken_at: float = 0.0
    first_reply_at: float = 0.0
    closed_at: float = 0.0
    last_agent_at: float = 0.0
    last_customer_at: float = 0.0
    agent_id: int = 0
    agent_name: str = ""
    outcome: str = ""
    closed_by: str = ""
    status_message_id: int = 0  # the customer's "you are number N in the queue" message, edited in place
    status_position: int = 0
    channel: str = "telegram"
    given: bool = False  # given to the agent by auto-assignment and not yet accepted by a reply
    unread: int = 0  # the customer's messages since an agent last answered or opened the ticket in the workplace
    extra: dict[str, str] = field(default_factory=dict)

    def to_redis(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                continue
            if isinstance(value, tuple):
                value = ",".join(value)
            out[f.name] = str(value)
        return out

    @classmethod
    def from_redis(cls, data: dict[str, str]) -> Ticket:
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            if f.name not in data or f.name == "extra":
                continue
            raw = data[f.name]
            if f.name == "state":
                kwargs[f.name] = TicketState(raw)
            elif f.name == "reason":
                kwargs[f.name] = Reason(raw)
            elif f.name == "frustration":
                kwargs[f.name] = tuple(x for x in raw.split(",") if x)
            elif f.type == "bool":
                kwargs[f.name] = raw == "True"
            elif f.type in ("int",):
                kwargs[f.name] = int(float(raw or 0))
            elif f.type in ("float",):
                kwargs[f.name] = float(raw or 0)
            else:
                kwargs[f.name] = raw
        return cls(**kwargs)  # type: ignore[arg-type]

    @property
    def is_open(self) -> bool:
        return self.state is not TicketState.CLOSED

    @property
    def accepted(self) -> bool:
        """Whether the agent holding it has answered since he got it (a ticket he took himself always is)."""
        return not self.given or self.last_agent_at >= self.taken_at > 0

"""What the dialog core and the rest of the product say to each other, and nothing more.

The neutral records a channel turns into its own messages (``Reply`` with ``Button`` rows) and its own
updates into (``Customer``, ``Action``), and the ports the dialog calls: ``HandoffPort`` (implemented by
``handoff.customer``) and ``SurveyPort`` (implemented by ``surveys.triggers``). Light on purpose: the feature
packages import it without the dialog's machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.core.conversation import Turn

__all__ = [
    "Action",
    "Button",
    "Customer",
    "HandoffOutcome",
    "HandoffPort",
    "HandoffReason",
    "HandoffRequest",
    "Reply",
    "SurveyPort",
]


@dataclass(frozen=True)
class Customer:
    chat_id: int
    user_id: int
    name: str
    username: str | None = None
    language_code: str | None = None


class Action(StrEnum):
    """What a button under a bot message does (packed into Telegram's callback data at the edge)."""

    HELPED = "y"
    NOT_HELPED = "n"
    HUMAN = "h"
    CHOOSE = "c"
    NONE_OF_THESE = "x"
    CANCEL_WAIT = "w"  # the customer found the answer while waiting for a person


@dataclass(frozen=True)
class Button:
    text: str
    action: Action | None
    search_id: str = ""  # the search the button belongs to (or the ticket, for CANCEL_WAIT)
    index: int = 0
    callback: str = ""  # ready-made callback data of another feature (a survey), used instead of the above


@dataclass(frozen=True)
class Reply:
    """One message to the customer."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    html: bool = False
    menu: bool = False  # attach the persistent menu (reply keyboard)
    track: str = ""  # remember the sent message under this name (e.g. a ticket's status, edited later)


class HandoffReason(StrEnum):
    ASKED = "asked_for_person"
    BOT_UNSURE = "bot_unsure"
    NEGATIVE_FEEDBACK = "negative_feedback"
    FRUSTRATION = "frustration"


@dataclass(frozen=True)
class HandoffRequest:
    customer: Customer
    reason: HandoffReason
    lang: str
    question: str
    frustration: tuple[str, ...] = ()
    context: tuple[Turn, ...] = ()


@dataclass(frozen=True)
class HandoffOutcome:
    """What the customer is told after asking for a person: texts already in his language."""

    replies: tuple[Reply, ...]
    ticket_id: str = ""


class HandoffPort(Protocol):
    """The hand-off desk as the dialog sees it."""

    async def request(self, request: HandoffRequest) -> HandoffOutcome: ...


class SurveyPort(Protocol):
    """The surveys as the dialog sees them: a bot answer given, the customer speaking, an answer that helped."""

    async def answer_given(self, customer: Customer, lang: str, dialog: str, articles: list[str]) -> None: ...

    async def customer_spoke(self, chat_id: int) -> None: ...

    async def after_helped(self, customer: Customer, lang: str, dialog: str, articles: list[str]) -> Reply | None: ...

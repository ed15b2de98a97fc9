"""What the hand-off desk needs from the channels it works through, and nothing of any channel itself.

Agents, supervisors and the agents' group are reached through a ``StaffChannel`` (Telegram today; the web
workplace beside it); what the relay passes between a customer and his agent, in order and once, through the
``Delivery`` of the channel each is on (``OutboxEntry``); a message a customer was shown is edited through a
``CustomerChannel``. Each channel implements these in its own package (``bot.telegram.staff``,
``bot.telegram.delivery``, ``bot.rasa.channel``) and turns buttons into whatever its buttons are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from kb_index.errors import ZabotaError

__all__ = [
    "ChannelUnreachable",
    "CustomerChannel",
    "DeliverLater",
    "Delivery",
    "DeliveryError",
    "DeliveryRefused",
    "OutboxEntry",
    "StaffButton",
    "StaffButtons",
    "StaffChannel",
]


@dataclass(frozen=True)
class StaffButton:
    """A button under a message to an agent: what it does (take, close, switch, transfer, canned, kb) to which
    ticket, with a value (an outcome, an agent id, a canned reply's name, an article's number)."""

    text: str
    action: str
    ticket: str = ""
    value: str = ""

    @property
    def data(self) -> str:
        """What the button carries back when tapped: ``t:<action>:<ticket>:<value>`` on every channel."""
        return f"t:{self.action}:{self.ticket}:{self.value}"


StaffButtons = Sequence[Sequence[StaffButton]]


class StaffChannel(Protocol):
    """How the desk reaches its staff (one person, or the agents' group)."""

    async def send(self, chat_id: int, text: str, buttons: StaffButtons = ()) -> int | None:
        """Send a message; its id, or None when the person cannot be reached (he blocked the bot, left) or the
        message goes out later through another process (``handoff.relay.RelayedStaff``)."""
        ...

    async def remove_buttons(self, chat_id: int, message_id: int) -> None:
        """Take the buttons off a message sent earlier (a ticket someone took); a message gone is no error."""
        ...

    async def show_board(self, chat_id: int, text: str, message_id: int) -> int:
        """Show the queue board: edit message ``message_id`` in place, or post it anew (``message_id`` 0, or the
        old one gone); the id of the message that now shows it."""
        ...


class CustomerChannel(Protocol):
    """How the desk changes what a customer was already shown (his place in the queue)."""

    async def edit(self, chat_id: int, message_id: int, text: str) -> bool:
        """Replace the text of a message sent to the customer; False when it cannot be edited any more."""
        ...


@dataclass(frozen=True)
class OutboxEntry:
    """One message the relay delivers, in order, once: to a customer or to an agent, on his channel.

    Either words (``text``, ``html`` when it is HTML) or a copy of a message the other side sent on its channel
    (``source_chat``/``source_message``, of ``kind`` photo, document...), under an optional ``header`` line.
    ``buttons`` are rows of (label, data) pairs; ``track`` names the message for ``HandoffEvents.delivered``.
    ``attachment``: a file the sender uploaded on a channel that keeps files itself (the web widget), by its path
    in the data folder every process shares, with ``file_name`` to show; ``text`` is then its caption.
    ``file_ref``: the sender's channel's own reference to the file of a copied message (a Telegram file id), for a
    recipient on a channel that cannot copy it and fetches it instead.
    """

    to: int
    direction: str  # to_agent | to_customer | notice
    ticket: str = ""
    text: str = ""
    kind: str = "text"
    html: bool = False
    header: str = ""
    source_chat: int = 0
    source_message: int = 0
    buttons: tuple[tuple[tuple[str, str], ...], ...] = ()
    track: str = ""
    attachment: str = ""
    file_name: str = ""
    file_ref: str = ""

    @property
    def is_copy(self) -> bool:
        return bool(self.source_message)

    def to_fields(self) -> dict[str, str]:
        """As stored in the outbox stream (strings only; empty fields left out)."""
        fields = {"to": str(self.to), "direction": self.direction, "ticket": self.ticket, "text": self.text,
                  "kind": self.kind, "header": self.header, "track": self.track, "attachment": self.attachment,
                  "file_name": self.file_name, "file_ref": self.file_ref}
        if self.html:
            fields["html"] = "1"
        if self.is_copy:
            fields["from_chat"], fields["message_id"] = str(self.source_chat), str(self.source_message)
        if self.buttons:
            fields["buttons"] = json.dumps([[list(b) for b in row] for row in self.buttons], ensure_ascii=False)
        return {k: v for k, v in fields.items() if v or k in ("to", "direction")}

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> OutboxEntry:
        """An entry read back from the stream, including those written by earlier versions (a Telegram keyboard
        in ``markup``, HTML marked by a direction ending in ``_html``)."""
        direction = fields.get("direction", "notice")
        html = fields.get("html") == "1" or direction.endswith("_html")
        if "buttons" in fields:
            buttons = tuple(tuple((str(t), str(d)) for t, d in row) for row in json.loads(fields["buttons"]))
        elif fields.get("markup"):
            keyboard = json.loads(fields["markup"]).get("inline_keyboard", [])
            buttons = tuple(tuple((str(b.get("text", "")), str(b.get("callback_data", ""))) for b in row) for row in keyboard)
        else:
            buttons = ()
        return cls(
            to=int(fields["to"]), direction=direction.removesuffix("_html"), ticket=fields.get("ticket", ""),
            text=fields.get("text", ""), kind=fields.get("kind", "text"), html=html, header=fields.get("header", ""),
            source_chat=int(fields.get("from_chat") or 0), source_message=int(fields.get("message_id") or 0),
            buttons=buttons, track=fields.get("track", ""), attachment=fields.get("attachment", ""),
            file_name=fields.get("file_name", ""), file_ref=fields.get("file_ref", ""),
        )


class DeliveryError(ZabotaError):
    """What a channel answered the relay instead of a delivered message."""


class DeliveryRefused(DeliveryError):
    """The channel will not deliver this message, now or later: the person blocked the bot (``blocked``), or the
    message itself was refused. The relay records it as done (with no message) and moves on."""

    def __init__(self, reason: str, *, blocked: bool = False) -> None:
        super().__init__(reason)
        self.blocked = blocked


class DeliverLater(DeliveryError):
    """The channel asks to be tried again after ``seconds`` (a rate limit); the entry stays pending."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"try again in {seconds} s")
        self.seconds = seconds


class ChannelUnreachable(DeliveryError):
    """The channel's servers cannot be reached now; the entry stays pending and is tried again."""


class Delivery(Protocol):
    """A channel customers or agents are on, as the relay delivers to it."""

    def reaches(self, chat_id: int) -> bool:
        """Whether ``chat_id`` is a chat of this channel."""
        ...

    async def deliver(self, entry: OutboxEntry) -> Sequence[int]:
        """Deliver the entry; the ids of the messages that show it, the message itself last (a header sent
        before a copy comes first). Raises ``DeliveryRefused``, ``DeliverLater`` or ``ChannelUnreachable``."""
        ...

"""The customer's side of a hand-off: opening the ticket, telling him where he stands, cancelling.

The desk (``handoff.HandoffDesk``) keeps the tickets; this class turns its answers into messages in the
customer's language: his place in the queue and a wait estimated from recent waits, or when agents are back
outside working hours, or who is already talking with him.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from bot.core.channels import channel_of
from bot.core.ports import Action, Button, HandoffOutcome, HandoffRequest, Reply
from bot.core.texts import Texts
from handoff import HandoffDesk, Outcome, Ticket, TicketRequest, TicketState, WorkingHours
from handoff.durations import format_wait_estimate
from handoff.events import HandoffEvents
from handoff.relay import Relay
from intents import detect_language

__all__ = ["CustomerHandoff"]


class CustomerHandoff:
    """Implements the dialog's hand-off port on top of the desk."""

    def __init__(
        self,
        desk: HandoffDesk,
        texts: Texts,
        hours: WorkingHours,
        relay: Relay,
        *,
        events: HandoffEvents | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.desk = desk
        self.texts = texts
        self.hours = hours
        self.relay = relay
        self.events = events or relay.events
        self._clock = clock

    async def request(self, request: HandoffRequest, *, channel: str = "") -> HandoffOutcome:
        """Open (or find) the customer's ticket; ``channel`` marks where he writes from (``Ticket.channel``; by
        default the channel his chat id belongs to)."""
        customer = request.customer
        opened = await self.desk.open(
            TicketRequest(
                chat_id=customer.chat_id,
                user_id=customer.user_id,
                customer_name=customer.name,
                username=customer.username or "",
                lang=request.lang,
                reason=request.reason,
                question=request.question or _last_question(request),
                frustration=request.frustration,
                context=tuple(turn.to_json() for turn in request.context),
                channel=channel or channel_of(customer.chat_id).value,
            )
        )
        ticket = opened.ticket
        lang = request.lang
        if not opened.created:
            return HandoffOutcome((await self._standing(ticket, lang, again=True),), ticket.id)
        reply = await self._standing(ticket, lang, again=False)
        await self.events.opened(ticket)
        return HandoffOutcome((reply,), ticket.id)

    async def _standing(self, ticket: Ticket, lang: str, *, again: bool) -> Reply:
        t = self.texts
        if ticket.state is TicketState.ASSIGNED:
            return Reply(t.get(lang, "handoff_with_agent", agent=ticket.agent_name))
        position = await self.desk.queue.position(ticket.id) or 1
        cancel = ((Button(t.get(lang, "btn_cancel_wait"), Action.CANCEL_WAIT, ticket.id),),)
        track = f"ticket:{ticket.id}"
        if again:
            return Reply(t.get(lang, "handoff_already_waiting", position=position, eta=await self.eta(position, lang)))
        now = datetime.fromtimestamp(self._clock(), UTC)
        if not self.hours.is_open(now):
            opening = self.hours.next_opening(now)
            return Reply(
                t.get(lang, "handoff_outside_hours", opening=self.opening(opening, now, lang), hours=self.hours.describe()),
                buttons=cancel,
                track=track,
            )
        if not await self.desk.shifts.on_shift():
            return Reply(t.get(lang, "handoff_no_agents", position=position), buttons=cancel, track=track)
        return Reply(
            t.get(lang, "handoff_queued", position=position, eta=await self.eta(position, lang)),
            buttons=cancel,
            track=track,
        )

    async def eta(self, position: int, lang: str) -> str:
        return format_wait_estimate(await self.desk.queue.estimate_wait(position), self.texts, lang)

    def opening(self, opening: datetime | None, now: datetime, lang: str) -> str:
        if opening is None:
            return self.hours.describe()
        local_now = now.astimezone(self.hours.zone)
        clock = opening.strftime("%H:%M")
        days = (opening.date() - local_now.date()).days
        if days == 0:
            return self.texts.get(lang, "opening_today", time=clock)
        if days == 1:
            return self.texts.get(lang, "opening_tomorrow", time=clock)
        return self.texts.get(lang, "opening_date", date=opening.strftime("%d.%m"), time=clock)

    async def acknowledge_waiting(self, ticket: Ticket) -> None:
        """A waiting customer who writes again hears where he stands, at most once every few minutes."""
        if not await self.desk.once_per(ticket.id, "waiting-ack", 300):
            return
        position = await self.desk.queue.position(ticket.id) or 1
        text = self.texts.get(ticket.lang, "handoff_already_waiting", position=position, eta=await self.eta(position, ticket.lang))
        await self.relay.send_text(ticket.chat_id, text, ticket.id)

    async def follow_language(self, ticket: Ticket, words: str, app_code: str | None) -> Ticket:
        """A customer who changes language while he waits (or talks to an agent) is told what happens from then on
        in the language he now writes in: the ticket's language follows his words (``app_code``: his app's)."""
        if not words:
            return ticket
        lang = detect_language(words, prior=app_code or ticket.lang)
        if lang == ticket.lang:
            return ticket
        await self.desk.update(ticket.id, lang=lang)
        return replace(ticket, lang=lang)

    async def cancel(self, chat_id: int, ticket_id: str, lang: str) -> tuple[Reply, Ticket | None]:
        """The customer found the answer himself: the ticket closes as resolved by him."""
        ticket = await self.desk.get(ticket_id)
        if ticket is None or not ticket.is_open or ticket.chat_id != chat_id:
            return Reply(self.texts.get(lang, "cancel_none")), None
        closed = await self.desk.close(ticket_id, Outcome.CUSTOMER_RESOLVED, closed_by="customer")
        await self.events.cancelled_by_customer(closed)
        return Reply(self.texts.get(lang, "handoff_cancelled")), closed


def _last_question(request: HandoffRequest) -> str:
    for turn in reversed(request.context):
        if turn.role == "customer" and turn.kind in ("text", "edited_text") and turn.text.strip():
            return turn.text
    return ""

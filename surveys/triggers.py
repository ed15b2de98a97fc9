"""When a dialog ends, and so when to survey it.

- An agent closes a ticket: CSAT about the help, then CES; sent through the hand-off relay, so it arrives
  after the agent's last message and the "conversation closed" notice.
- The customer says a bot answer helped: CES (effort measures self-service), then CSAT.
- A bot answer, then silence for ``silence_seconds``: assumed resolved; the same survey, once.
Never while a ticket is open, never twice for one dialog, never more often than the fatigue period allows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import redis.asyncio as aioredis

from bot.core.conversation import Turn
from bot.core.ports import Button, Customer, Reply
from handoff import HandoffDesk, Outcome, Ticket
from handoff.lease import Lease, run_periodically
from handoff.relay import Relay
from surveys import keys
from surveys.models import Survey, SurveyTrigger
from surveys.questions import SurveyQuestions
from surveys.service import SurveyService

__all__ = ["RelayedSurveys", "SurveySender", "SurveyTriggers", "articles_in_context"]

log = logging.getLogger(__name__)


class SurveySender(Protocol):
    """The channel that sends a survey on its own (not after a ticket, which goes through the relay)."""

    async def send(self, survey: Survey) -> bool:
        """Send the survey's first question; False when it could not be delivered (recorded by the sender)."""
        ...


class RelayedSurveys:
    """A ``SurveySender`` through the hand-off relay's outbox, for a process that reaches no channel itself: the
    process that delivers the outbox sends it, and its delivery is reported to ``SurveyTriggers.delivered``."""

    def __init__(self, relay: Relay, questions: SurveyQuestions) -> None:
        self.relay = relay
        self.questions = questions

    async def send(self, survey: Survey) -> bool:
        first = self.questions.first(survey)
        await self.relay.send_text(
            survey.chat_id, first.text, survey.ticket_id, buttons=first.buttons, track=f"survey:{survey.id}"
        )
        return True


def articles_in_context(turns: Sequence[Turn]) -> list[str]:
    """The articles the bot showed in a conversation, in order (from its decision and choice turns)."""
    shown: list[str] = []
    for turn in turns:
        if turn.kind == "decision" and turn.text == "answer":
            matches = turn.data.get("matches", [])
            if matches:
                shown.append(str(matches[0]["article_id"]))
        elif turn.kind in ("choice", "article"):
            shown.append(turn.text)
    return list(dict.fromkeys(shown))


class SurveyTriggers:
    def __init__(
        self,
        redis: aioredis.Redis,
        service: SurveyService,
        questions: SurveyQuestions,
        sender: SurveySender,
        desk: HandoffDesk,
        relay: Relay,
        *,
        enabled: bool = True,
        silence_seconds: float = 3600.0,
        sender_reaches: Callable[[int], bool] = lambda chat_id: True,
        tick: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self.service = service
        self.questions = questions
        self.sender = sender
        self._sender_reaches = sender_reaches  # chats ``sender`` cannot reach get their survey through the relay
        self._through_relay = RelayedSurveys(relay, questions)
        self.desk = desk
        self.relay = relay
        self.enabled = enabled
        self.silence_seconds = silence_seconds
        self.tick = tick
        self._clock = clock
        self._lease = Lease(redis, keys.TRIGGERS_LEASE, tick * 5)

    # ------------------------------------------------------------------ a ticket closed by an agent

    async def ticket_closed(self, ticket: Ticket) -> None:
        if not self.enabled or ticket.outcome not in (Outcome.RESOLVED.value, Outcome.UNRESOLVED.value):
            return
        survey = await self.service.open_for_ticket(ticket, articles_in_context(await self.desk.context(ticket.id)))
        if survey is None:
            return
        # after the agent's last message and the "closed" notice: through the relay, in the ticket's order
        await self._through_relay.send(survey)

    async def delivered(self, track: str, message_id: int, error: str) -> None:
        """The relay delivered (or could not deliver) a tracked message; surveys keep their message id."""
        if not track.startswith("survey:"):
            return
        survey_id = track.split(":", 1)[1]
        if message_id:
            await self.service.attach_message(survey_id, message_id)
            return
        survey = await self.service.get(survey_id)
        if survey is not None:
            await self.service.not_delivered(survey, blocked=error == "blocked")

    # ------------------------------------------------------------------ bot answers (the dialog's survey port)

    async def answer_given(self, customer: Customer, lang: str, dialog: str, articles: list[str]) -> None:
        if self.enabled:
            payload = json.dumps({"user": customer.user_id, "name": customer.name, "lang": lang, "articles": articles})
            await self.service.answer_given(customer.chat_id, dialog, payload)

    async def customer_spoke(self, chat_id: int) -> None:
        if self.enabled:
            await self.service.customer_spoke(chat_id)

    async def after_helped(self, customer: Customer, lang: str, dialog: str, articles: list[str]) -> Reply | None:
        if not self.enabled or await self.desk.open_ticket_of(customer.chat_id) is not None:
            return None
        survey = await self.service.open(
            trigger=SurveyTrigger.BOT_HELPED,
            chat_id=customer.chat_id,
            user_id=customer.user_id,
            lang=lang,
            dialog=dialog,
            customer_name=customer.name,
            articles=articles,
        )
        if survey is None:
            return None
        first = self.questions.first(survey)
        rows = tuple(tuple(Button(label, None, callback=data) for label, data in row) for row in first.buttons)
        return Reply(first.text, buttons=rows, track=f"survey:{survey.id}")

    # ------------------------------------------------------------------ assumed resolved

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Survey bot answers that were followed by silence; in the process that holds the lease."""
        if self.enabled:
            await run_periodically("survey", self.survey_silent_answers, self._lease, stop or asyncio.Event(), self.tick)

    async def survey_silent_answers(self) -> int:
        sent = 0
        for chat_id, dialog, raw in await self.service.due(self.silence_seconds):
            if await self.desk.open_ticket_of(chat_id) is not None:
                continue
            payload = json.loads(raw or "{}")
            survey = await self.service.open(
                trigger=SurveyTrigger.ASSUMED_RESOLVED,
                chat_id=chat_id,
                user_id=int(payload.get("user", chat_id)),
                lang=str(payload.get("lang", "")),
                dialog=dialog,
                customer_name=str(payload.get("name", "")),
                articles=list(payload.get("articles", [])),
            )
            sender = self.sender if self._sender_reaches(chat_id) else self._through_relay
            if survey is not None and await sender.send(survey):
                sent += 1
        return sent

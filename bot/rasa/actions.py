"""Zabota's knowledge base, hand-off and surveys as Rasa custom actions.

Each action is a thin adapter over a service the Telegram bot uses: it reads Rasa's tracker, calls the service,
and turns the outcome into utterances (in the customer's language) and slot events a story, rule or flow can
branch on. The actions take their services in ``__init__`` and are registered as instances
(``bot.runner.build_actions``).

Slots the actions set (declare them in the domain; ``docs/rasa.md`` has one ready):

    zabota_decision          "answer", "clarify" or "handoff": what the knowledge base made of the question
    zabota_confidence        how sure it was, 0..1 (1.0 when the customer chose the article from buttons)
    zabota_article_id        the answered article, or the best candidate when it asked to choose
    zabota_lang              the customer's language: "ru", "uk" or "en"
    zabota_ticket_id         the ticket a hand-off opened in Zabota's queue
    zabota_survey_id         the survey being answered
    zabota_survey_question   the survey question waiting for an answer ("csat", "ces", "nps"), if any
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.core.gaps import GapLog
from bot.core.ports import Customer, HandoffReason, HandoffRequest
from bot.core.texts import Texts
from bot.rasa.channel import (
    ARTICLE_ENTITY,
    HANDOFF_INTENT,
    SURVEY_ENTITY,
    RasaConversations,
    article_payload,
    parse_survey_answer,
    survey_buttons,
)
from bot.rasa.transcript import SLOT_ARTICLE, SLOT_CONFIDENCE, SLOT_DECISION, frustration_history, turns_from_events
from handoff import HandoffDesk, Ticket
from handoff.customer import CustomerHandoff
from intents import assess, detect_language
from intents.language import normalize_language_code
from kb_index import Decision, KnowledgeBase, SearchResult, UnknownArticleError
from kb_index.gaps import Gap
from surveys import Question, Survey, SurveyService, SurveyTrigger, TapOutcome
from surveys.alerts import LowScoreAlerts
from surveys.questions import SurveyMessage, SurveyQuestions
from surveys.triggers import articles_in_context

__all__ = [
    "SLOT_ARTICLE",
    "SLOT_CONFIDENCE",
    "SLOT_CUSTOMER_NAME",
    "SLOT_DECISION",
    "SLOT_LANG",
    "SLOT_SURVEY",
    "SLOT_SURVEY_QUESTION",
    "SLOT_TICKET",
    "AskSurveyAction",
    "HandoffAction",
    "KbAnswerAction",
    "RecordSurveyAnswerAction",
]

log = logging.getLogger(__name__)

SLOT_LANG = "zabota_lang"
SLOT_TICKET = "zabota_ticket_id"
SLOT_SURVEY = "zabota_survey_id"
SLOT_SURVEY_QUESTION = "zabota_survey_question"
SLOT_CUSTOMER_NAME = "zabota_customer_name"  # optional, filled by the assistant: the name agents see

_PAYLOAD = re.compile(r"^/(?P<intent>[\w-]+)(?P<entities>\{.*\})?$", re.DOTALL)
Domain = dict[str, Any]


class _Language:
    """The customer's language: his message, or what the conversation knows already, or the default."""

    def __init__(self, texts: Texts) -> None:
        self.texts = texts

    def of(self, tracker: Tracker, text: str = "") -> str:
        prior = tracker.get_slot(SLOT_LANG) or _metadata_language(tracker) or self.texts.default_lang
        if text and not text.startswith("/"):
            return self.texts.lang(detect_language(text, prior=prior))
        return self.texts.lang(normalize_language_code(prior))


class KbAnswerAction(Action):
    """``action_kb_answer``: the latest message searched in the knowledge base; the answer, or a choice, uttered."""

    def __init__(
        self,
        kb: KnowledgeBase,
        texts: Texts,
        conversations: RasaConversations,
        surveys: SurveyService,
        questions: SurveyQuestions,
        alerts: LowScoreAlerts,
        *,
        gaps: GapLog | None = None,
    ) -> None:
        self.kb = kb
        self.texts = texts
        self.conversations = conversations
        self.surveys = surveys
        self.questions = questions
        self.alerts = alerts
        self.gaps = gaps
        self._language = _Language(texts)

    def name(self) -> str:
        return "action_kb_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[EventType]:
        text = _latest_text(tracker)
        lang = self._language.of(tracker, text)
        chosen = _entity(tracker, ARTICLE_ENTITY)
        if chosen:
            try:
                self._utter_article(dispatcher, chosen, lang)
            except UnknownArticleError:  # a button from before a reindex: its title is searched instead
                log.info("article %r chosen in Rasa is no longer in the knowledge base", chosen)
                text = _button_title(tracker.events, text)
            else:
                return _decision_slots(Decision.ANSWER.value, 1.0, chosen, lang)
        elif await self._took_comment(dispatcher, tracker, text):
            return [SlotSet(SLOT_DECISION, None)]
        if not text or text.startswith("/"):
            return _decision_slots(Decision.HANDOFF.value, 0.0, None, lang)
        try:
            result = await self.kb.search_async(text, lang=lang)
        except Exception:  # the customer hears that something went wrong, and the flow can hand him off
            log.exception("knowledge-base search failed")
            dispatcher.utter_message(text=self.texts.get(lang, "error"))
            return _decision_slots(Decision.HANDOFF.value, 0.0, None, lang)
        if result.decision is not Decision.ANSWER:
            await self._gap(text, lang, result)
        best = result.best
        if result.decision is Decision.ANSWER and best is not None:
            self._utter_article(dispatcher, best.article_id, lang)
            return _decision_slots(Decision.ANSWER.value, result.confidence, best.article_id, lang)
        if result.decision is Decision.CLARIFY and best is not None:
            buttons = [
                {"title": _short(self.kb.article(m.article_id, lang).title), "payload": article_payload(m.article_id)}
                for m in result.matches[:3]
            ]
            buttons.append({"title": self.texts.get(lang, "btn_human"), "payload": f"/{HANDOFF_INTENT}"})
            dispatcher.utter_message(text=self.texts.get(lang, "clarify"), buttons=buttons)
            return _decision_slots(Decision.CLARIFY.value, result.confidence, best.article_id, lang)
        return _decision_slots(Decision.HANDOFF.value, result.confidence, None, lang)

    def _utter_article(self, dispatcher: CollectingDispatcher, article_id: str, lang: str) -> None:
        article = self.kb.article(article_id, lang)
        dispatcher.utter_message(text=f"{article.title}\n\n{article.answer}")

    async def _took_comment(self, dispatcher: CollectingDispatcher, tracker: Tracker, text: str) -> bool:
        """The message is the comment the customer offered to write after a low score."""
        if not text or text.startswith("/"):
            return False
        chat_id = await self.conversations.find(tracker.sender_id)
        survey_id = await self.surveys.take_comment_slot(chat_id) if chat_id is not None else None
        if not survey_id:
            return False
        survey = await self.surveys.record_comment(survey_id, text)
        if survey is None:
            return False
        dispatcher.utter_message(text=self.questions.texts.get(survey.lang, "comment_thanks"))
        await self.alerts.forward_comment(survey)
        return True

    async def _gap(self, question: str, lang: str, result: SearchResult) -> None:
        if self.gaps is not None:
            best = result.best
            await self.gaps.record(Gap(question=question, reason=result.decision.value, lang=lang,
                                       closest_article=best.article_id if best else "", confidence=result.confidence))


class HandoffAction(Action):
    """``action_handoff``: a ticket in Zabota's queue with the Rasa conversation as its context; Rasa pauses."""

    def __init__(self, handoff: CustomerHandoff, texts: Texts, conversations: RasaConversations) -> None:
        self.handoff = handoff
        self.texts = texts
        self.conversations = conversations
        self._language = _Language(texts)

    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[EventType]:
        lang = self._language.of(tracker, _last_customer_text(tracker.events))
        chat_id = await self.conversations.chat_id(tracker.sender_id)
        turns = turns_from_events(tracker.events, lang)
        written = [turn for turn in turns if turn.role == "customer" and turn.kind == "text"]
        question = written[-1].text if written else ""
        frustration = assess(question, frustration_history(written[:-1]), now=datetime.now(UTC)) if question else None
        unsure = tracker.get_slot(SLOT_DECISION) == Decision.HANDOFF.value
        name = str(tracker.get_slot(SLOT_CUSTOMER_NAME) or _metadata_name(tracker) or tracker.sender_id)
        outcome = await self.handoff.request(
            HandoffRequest(
                customer=Customer(chat_id=chat_id, user_id=chat_id, name=name, language_code=lang),
                reason=HandoffReason.BOT_UNSURE if unsure else HandoffReason.ASKED,
                lang=lang,
                question=question,
                frustration=frustration.reasons if frustration is not None else (),
                context=tuple(turns[-50:]),
            ),
            channel="rasa",
        )
        for reply in outcome.replies:  # the queue position; its "cancel" button needs Telegram, so it is left out
            dispatcher.utter_message(text=reply.text)
        latest = max((float(e.get("timestamp") or 0) for e in tracker.events), default=time.time())
        await self.conversations.watch(outcome.ticket_id, since=latest)
        return [SlotSet(SLOT_TICKET, outcome.ticket_id), SlotSet(SLOT_LANG, lang), ConversationPaused()]


def _utter(dispatcher: CollectingDispatcher, message: SurveyMessage) -> None:
    """A survey message as a Rasa message: the same words as on every channel, the taps as button payloads."""
    dispatcher.utter_message(text=message.text, buttons=survey_buttons(message.buttons))


class AskSurveyAction(Action):
    """``action_ask_csat`` / ``action_ask_ces``: a survey of this conversation, starting with that question.

    The other question follows when the first is answered (``action_record_survey_answer``), as in Telegram.
    Once per dialog, and not more often per customer than the survey settings allow: otherwise nothing is asked.
    """

    def __init__(
        self,
        question: Question,
        surveys: SurveyService,
        questions: SurveyQuestions,
        desk: HandoffDesk,
        conversations: RasaConversations,
        texts: Texts,
        *,
        enabled: bool = True,
    ) -> None:
        self.question = question
        self.surveys = surveys
        self.questions = questions
        self.desk = desk
        self.conversations = conversations
        self.enabled = enabled
        self._language = _Language(texts)

    def name(self) -> str:
        return f"action_ask_{self.question.value}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[EventType]:
        if not self.enabled:
            return [SlotSet(SLOT_SURVEY, None), SlotSet(SLOT_SURVEY_QUESTION, None)]
        chat_id = await self.conversations.chat_id(tracker.sender_id)
        survey = await self._current(tracker, chat_id) or await self._open(tracker, chat_id)
        if survey is None:
            return [SlotSet(SLOT_SURVEY, None), SlotSet(SLOT_SURVEY_QUESTION, None)]
        if self.question.value in survey.answers:
            return []
        _utter(dispatcher, self.questions.question(survey, self.question))
        return [SlotSet(SLOT_SURVEY, survey.id), SlotSet(SLOT_SURVEY_QUESTION, self.question.value)]

    async def _current(self, tracker: Tracker, chat_id: int) -> Survey | None:
        """The survey this conversation is answering, when it has the question and is still open."""
        survey_id = tracker.get_slot(SLOT_SURVEY)
        survey = await self.surveys.get(str(survey_id)) if survey_id else None
        if survey is None or survey.user_id != chat_id or survey.expires_at < time.time():
            return None
        return survey if self.question in survey.questions else None

    async def _open(self, tracker: Tracker, chat_id: int) -> Survey | None:
        lang = self._language.of(tracker)
        name = str(tracker.get_slot(SLOT_CUSTOMER_NAME) or _metadata_name(tracker) or tracker.sender_id)
        ticket_id = tracker.get_slot(SLOT_TICKET)
        ticket = await self.desk.get(str(ticket_id)) if ticket_id else None
        if ticket is not None and ticket.chat_id == chat_id and not ticket.is_open:
            return await self._about_ticket(ticket, chat_id, name)
        article = tracker.get_slot(SLOT_ARTICLE) if tracker.get_slot(SLOT_DECISION) == Decision.ANSWER.value else None
        return await self.surveys.open(
            trigger=SurveyTrigger.BOT_HELPED,
            chat_id=chat_id,
            user_id=chat_id,
            lang=lang,
            dialog=f"rasa:{tracker.sender_id}:{_session_started(tracker.events):.0f}",
            customer_name=name,
            articles=[str(article)] if article else [],
            first=self.question,
            channel="rasa",
        )

    async def _about_ticket(self, ticket: Ticket, chat_id: int, name: str) -> Survey | None:
        # The same dialog as the survey Zabota sends when the agent closes the ticket: one survey, whoever asks.
        return await self.surveys.open_for_ticket(
            ticket, articles_in_context(await self.desk.context(ticket.id)), chat_id=chat_id, customer_name=name,
            first=self.question, channel="rasa",
        )


class RecordSurveyAnswerAction(Action):
    """``action_record_survey_answer``: a tapped (or typed) score into the survey store; the next question or thanks.

    The answer comes from the button payload's ``zabota_survey_answer`` entity ("<survey>:<question>:<value>"),
    or from a slot of that name, or is a bare number typed for the question in ``zabota_survey_question``.
    """

    def __init__(
        self,
        surveys: SurveyService,
        questions: SurveyQuestions,
        alerts: LowScoreAlerts,
        conversations: RasaConversations,
        texts: Texts,
    ) -> None:
        self.surveys = surveys
        self.questions = questions
        self.alerts = alerts
        self.conversations = conversations
        self._language = _Language(texts)

    def name(self) -> str:
        return "action_record_survey_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[EventType]:
        t = self.questions.texts
        answer = _survey_answer(tracker)
        chat_id = await self.conversations.find(tracker.sender_id)
        if answer is None or chat_id is None:
            dispatcher.utter_message(text=t.get(self._language.of(tracker), "survey_closed"))
            return [SlotSet(SLOT_SURVEY_QUESTION, None)]
        survey_id, question, value = answer
        if question == "comment":
            return await self._comment_choice(dispatcher, tracker, survey_id, chat_id, value)
        try:
            score = int(value)
        except ValueError:
            score = -1  # refused by the store as out of range
        result = await self.surveys.tap(survey_id, chat_id, question, score)
        survey = result.survey
        lang = survey.lang if survey is not None else self._language.of(tracker)
        if result.outcome is not TapOutcome.ACCEPTED or survey is None:
            notice = {TapOutcome.REPEATED: "already_counted", TapOutcome.NOT_YOURS: "not_yours"}
            dispatcher.utter_message(text=t.get(lang, notice.get(result.outcome, "survey_closed")))
            return [SlotSet(SLOT_SURVEY_QUESTION, None)]
        following = survey.next_question
        _utter(dispatcher, self.questions.after_answer(survey))
        if result.became_low:
            await self.alerts.alert(survey)
        return [SlotSet(SLOT_SURVEY, survey.id), SlotSet(SLOT_SURVEY_QUESTION, following.value if following else None)]

    async def _comment_choice(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, survey_id: str, chat_id: int, choice: str
    ) -> list[EventType]:
        """After a low score: "write a comment" (the next message is taken as it) or "skip"."""
        survey = await self.surveys.get(survey_id)
        if survey is None or survey.user_id != chat_id:
            dispatcher.utter_message(text=self.questions.texts.get(self._language.of(tracker), "survey_closed"))
            return []
        if choice == "c":
            await self.surveys.await_comment(chat_id, survey.id)
        dispatcher.utter_message(text=self.questions.after_comment_choice(survey, choice == "c"))
        return []


# ---------------------------------------------------------------------------- reading the tracker


def _decision_slots(decision: str, confidence: float, article_id: str | None, lang: str) -> list[EventType]:
    return [
        SlotSet(SLOT_DECISION, decision),
        SlotSet(SLOT_CONFIDENCE, round(confidence, 4)),
        SlotSet(SLOT_ARTICLE, article_id),
        SlotSet(SLOT_LANG, lang),
    ]


def _latest_text(tracker: Tracker) -> str:
    return str(tracker.latest_message.get("text") or "").strip()


def _last_customer_text(events: Sequence[dict[str, Any]]) -> str:
    for event in reversed(events):
        text = str(event.get("text") or "").strip() if event.get("event") == "user" else ""
        if text and not text.startswith("/"):
            return text
    return ""


def _button_title(events: Sequence[dict[str, Any]], payload: str) -> str:
    """The title of the button whose payload the customer sent (from the assistant's last message with it)."""
    for event in reversed(events):
        if event.get("event") != "bot":
            continue
        for button in (event.get("data") or {}).get("buttons") or []:
            if button.get("payload") == payload:
                return str(button.get("title") or "")
    return ""


def _entity(tracker: Tracker, entity: str) -> str:
    """An entity of the latest message, from Rasa's parse or from a button payload Rasa passed on as text."""
    value = next(tracker.get_latest_entity_values(entity), None)
    if value is None:
        match = _PAYLOAD.match(_latest_text(tracker))
        if match and match["entities"]:
            try:
                value = json.loads(match["entities"]).get(entity)
            except (ValueError, AttributeError):
                value = None
    return str(value).strip() if value is not None else ""


def _survey_answer(tracker: Tracker) -> tuple[str, str, str] | None:
    raw = _entity(tracker, SURVEY_ENTITY) or str(tracker.get_slot(SURVEY_ENTITY) or "")
    if not raw:
        raw = _latest_text(tracker)
    parsed = parse_survey_answer(raw)
    if parsed is not None:
        return parsed
    survey_id, question = tracker.get_slot(SLOT_SURVEY), tracker.get_slot(SLOT_SURVEY_QUESTION)
    if survey_id and question and raw.strip().isdigit():  # a score typed instead of tapped
        return str(survey_id), str(question), raw.strip()
    return None


def _metadata(tracker: Tracker) -> dict[str, Any]:
    metadata = tracker.latest_message.get("metadata")
    if not isinstance(metadata, dict):
        for event in reversed(tracker.events):
            if event.get("event") == "user":
                metadata = event.get("metadata")
                break
    return metadata if isinstance(metadata, dict) else {}


def _metadata_language(tracker: Tracker) -> str:
    metadata = _metadata(tracker)
    for key in ("language_code", "language", "lang", "locale"):
        if isinstance(metadata.get(key), str) and metadata[key]:
            return str(metadata[key])
    return ""


def _metadata_name(tracker: Tracker) -> str:
    metadata = _metadata(tracker)
    for key in ("name", "first_name", "user_name"):
        if isinstance(metadata.get(key), str) and metadata[key].strip():
            return str(metadata[key]).strip()
    return ""


def _session_started(events: Sequence[dict[str, Any]]) -> float:
    """When the current session began (Rasa's clock): one bot-helped survey per session at most."""
    for event in reversed(events):
        if event.get("event") in ("session_started", "restart"):
            return float(event.get("timestamp") or 0)
    return float(events[0].get("timestamp") or 0) if events else 0.0


def _short(title: str, limit: int = 60) -> str:
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"

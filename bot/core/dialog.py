"""What the bot says to a customer: the dialog policy, independent of Telegram.

A message is small talk (a short, natural reply), a request for a person (a hand-off), or a question for the
knowledge base: answered in full with "did this help?", or offered as a choice of articles when the bot is
unsure, or handed to a person when nothing fits. "No" offers the next best articles once; a second "no",
frustration, or asking for a person goes to a person. Routers turn Telegram updates into calls here and the
returned ``Reply`` objects into Telegram messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from bot.core.answers import AnswerLedger
from bot.core.conversation import ConversationLog, ConversationState, DialogStates, ShownSearch, Turn
from bot.core.formatting import article_html, split_message
from bot.core.gaps import GapLog
from bot.core.ports import (
    Action,
    Button,
    Customer,
    HandoffPort,
    HandoffReason,
    HandoffRequest,
    Reply,
    SurveyPort,
)
from bot.core.texts import Texts
from intents import FrustrationState, IntentClassifier, assess, detect_language, normalize_language_code
from intents.frustration import ConversationTurn
from kb_index import Decision, KnowledgeBase, SearchResult, normalize_text
from kb_index.gaps import Gap

__all__ = ["CustomerDialog", "SearchObserver"]

log = logging.getLogger(__name__)

# Reasons that hand the conversation to a person at once; the others only flag it for the agent.
_STRONG_FRUSTRATION = {"insult", "repeated_question", "negative_feedback_twice"}


class SearchObserver(Protocol):
    """Who wants to know how searches go (metrics): the decision and the time it took, or the failure."""

    def searched(self, result: SearchResult, seconds: float) -> None: ...

    def search_failed(self, error: BaseException) -> None: ...


@dataclass
class _Context:
    customer: Customer
    state: ConversationState
    lang: str
    replies: list[Reply] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)  # for the conversation log, written together (``_write``)


class CustomerDialog:
    """The customer's side of the conversation."""

    def __init__(
        self,
        kb: KnowledgeBase,
        intents: IntentClassifier,
        texts: Texts,
        log: ConversationLog,
        states: DialogStates,
        handoff: HandoffPort,
        *,
        surveys: SurveyPort | None = None,
        gaps: GapLog | None = None,
        observer: SearchObserver | None = None,
        answers: AnswerLedger | None = None,
        default_lang: str = "ru",
    ) -> None:
        self.kb = kb
        self.intents = intents
        self.texts = texts
        self.log = log
        self.states = states
        self.handoff = handoff
        self.surveys = surveys
        self.gaps = gaps
        self.observer = observer
        self.answers = answers
        self.default_lang = default_lang
        self._menu_human = texts.variants("menu_human")
        self._menu_help = texts.variants("menu_help")
        # One customer's calls are handled one at a time in this process, whatever channel makes them (Telegram's
        # inbox also keeps one chat's updates in order across processes; Rasa calls the actions concurrently).
        self._locks: dict[int, asyncio.Lock] = {}

    def _lock(self, chat_id: int) -> asyncio.Lock:
        lock = self._locks.get(chat_id)
        if lock is None:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[chat_id] = asyncio.Lock()
        return lock

    @contextlib.asynccontextmanager
    async def _message(self, customer: Customer, text: str = "") -> AsyncIterator[_Context]:
        """One message or tap of the customer's, handled with his lock held. What it noted for the conversation
        log is written by ``_close``; if handling fails half-way, what was noted so far is written all the same
        (the agent who takes him later, and the repeated-question check, see the message)."""
        async with self._lock(customer.chat_id):
            ctx = await self._open(customer, text)
            try:
                yield ctx
            except Exception:
                with contextlib.suppress(Exception):  # the failure itself is what gets reported
                    await self._write(ctx)
                raise

    async def _open(self, customer: Customer, text: str = "") -> _Context:
        if self.surveys is not None:
            await self.surveys.customer_spoke(customer.chat_id)
        state = await self.states.load(customer.chat_id, before_this_update=True)
        # What he writes decides; where his words cannot (a tie, "ok"), his Telegram's language does.
        prior = _language_from_code(customer.language_code) or state.lang or self.default_lang
        lang = detect_language(text, prior=prior) if text else (state.lang or prior)
        state.lang = lang
        return _Context(customer, state, self.texts.lang(lang))

    async def remember_language(self, chat_id: int, lang: str) -> None:
        """The language the customer now writes in (told by the hand-off, which reads his messages meanwhile)."""
        state = await self.states.load(chat_id)
        if state.lang != lang:
            state.lang = lang
            await self.states.save(chat_id, state)

    async def _close(self, ctx: _Context) -> list[Reply]:
        await self.states.save(ctx.customer.chat_id, ctx.state)
        ctx.turns.extend(_bot_turn(reply, ctx.lang) for reply in ctx.replies)
        await self._write(ctx)
        return ctx.replies

    async def _write(self, ctx: _Context) -> None:
        """Write the turns noted so far to the conversation log, in one round trip. A message's turns are noted
        as they happen and written when it is done, or before a hand-off, which gives the log to a person."""
        turns, ctx.turns = ctx.turns, []
        await self.log.append(ctx.customer.chat_id, *turns)

    def _say(self, ctx: _Context, key: str, *, buttons: tuple[tuple[Button, ...], ...] = (), menu: bool = False, **params: object) -> None:
        ctx.replies.append(Reply(self.texts.get(ctx.lang, key, **params), buttons=buttons, menu=menu))

    # ------------------------------------------------------------------ entry points

    async def start(self, customer: Customer) -> list[Reply]:
        async with self._message(customer) as ctx:
            ctx.turns.append(Turn("customer", "command", "/start", ctx.lang))
            self._say(ctx, "start", name=customer.name, menu=True)
            return await self._close(ctx)

    async def help(self, customer: Customer) -> list[Reply]:
        async with self._message(customer) as ctx:
            ctx.turns.append(Turn("customer", "command", "/help", ctx.lang))
            self._say(ctx, "help", menu=True)
            return await self._close(ctx)

    async def ask_for_person(self, customer: Customer, how: str) -> list[Reply]:
        async with self._message(customer) as ctx:
            ctx.turns.append(Turn("customer", "command", how, ctx.lang))
            await self._hand_off(ctx, HandoffReason.ASKED, "")
            return await self._close(ctx)

    async def text(self, customer: Customer, text: str, *, edited: bool = False) -> list[Reply]:
        async with self._message(customer, text) as ctx:
            history = await self.log.recent(customer.chat_id, 30, before_this_update=True)
            ctx.turns.append(Turn("customer", "edited_text" if edited else "text", text, ctx.lang))
            await self._on_text(ctx, text, history)
            return await self._close(ctx)

    async def media(self, customer: Customer, kind: str, caption: str = "") -> list[Reply]:
        async with self._message(customer, caption) as ctx:
            ctx.turns.append(Turn("customer", "media", caption, ctx.lang, {"media": kind}))
            key = f"media_{kind}" if f"media_{kind}" in ("media_photo", "media_voice", "media_sticker",
                                                          "media_document", "media_location") else "media_other"
            if caption.strip() and kind in ("photo", "document"):
                history = await self.log.recent(customer.chat_id, 30, before_this_update=True)
                await self._on_text(ctx, caption, history)
            else:
                self._say(ctx, key, buttons=((self._human_button(ctx),),))
            return await self._close(ctx)

    async def button(self, customer: Customer, action: Action, search_id: str, index: int) -> list[Reply]:
        async with self._message(customer) as ctx:
            search = await self.states.search(customer.chat_id, search_id) if search_id else None
            ctx.turns.append(
                Turn("customer", "button", self._button_label(ctx, action, search, index), ctx.lang,
                     {"action": action.value, "search": search_id, "index": index}),
            )
            if action is Action.HUMAN:
                reason = HandoffReason.NEGATIVE_FEEDBACK if ctx.state.negative_streak else HandoffReason.ASKED
                await self._hand_off(ctx, reason, "")
                return await self._close(ctx)
            if search is None:
                self._say(ctx, "expired")
                return await self._close(ctx)
            if action is Action.HELPED:
                await self._helped(ctx, search_id, search)
            elif action is Action.NOT_HELPED:
                await self._not_helped(ctx, search_id, search)
            elif action is Action.CHOOSE:
                await self._chosen(ctx, search_id, search, index)
            elif action is Action.NONE_OF_THESE:
                await self._none_of_these(ctx, search_id, search)
            return await self._close(ctx)

    def _button_label(self, ctx: _Context, action: Action, search: ShownSearch | None, index: int) -> str:
        """What the customer tapped, in words, for the conversation log (an agent reads it)."""
        if action is Action.CHOOSE and search is not None and 0 <= index < len(search.matches):
            return self.kb.article(search.matches[index]["article_id"], ctx.lang).title
        key = {Action.HELPED: "btn_yes", Action.NOT_HELPED: "btn_no", Action.HUMAN: "btn_human",
               Action.NONE_OF_THESE: "btn_none", Action.CANCEL_WAIT: "btn_cancel_wait"}.get(action)
        return self.texts.get(ctx.lang, key) if key else action.value

    # ------------------------------------------------------------------ text

    async def _on_text(self, ctx: _Context, text: str, history: Sequence[Turn]) -> None:
        stripped = text.strip()
        if stripped in self._menu_human:
            await self._hand_off(ctx, HandoffReason.ASKED, "")
            return
        if stripped in self._menu_help:
            self._say(ctx, "help", menu=True)
            return

        frustration = assess(text, _frustration_history(history), now=datetime.now(UTC))
        if frustration.frustrated:
            ctx.state.frustrated = True
            ctx.state.frustration_reasons = sorted(set(ctx.state.frustration_reasons) | set(frustration.reasons))
        question = normalize_text(text)
        prediction = await self.intents.classify_async(text)
        intent = prediction.intent
        if not question and intent not in ("greet", "thanks", "goodbye", "affirm", "deny"):
            intent = "greet"  # nothing left after the pleasantries: answer it as a greeting
        ctx.turns.append(
            Turn("system", "intent", intent, ctx.lang, {"confidence": round(prediction.confidence, 3),
                                                         "frustration": list(frustration.reasons)}),
        )

        if _strongly_frustrated(frustration):
            self._say(ctx, "frustrated")
            await self._hand_off(ctx, HandoffReason.FRUSTRATION, text)
            return
        if intent == "ask_human":
            await self._hand_off(ctx, HandoffReason.ASKED, text)
        elif intent == "complaint":
            # An apology first; then the question in it gets answered if it can be, else a person takes over.
            self._say(ctx, "complaint")
            await self._search(ctx, text, unsure=HandoffReason.FRUSTRATION)
        elif intent in ("greet", "thanks", "goodbye", "bot_challenge", "help") and not _has_question(question, intent):
            self._say(ctx, {"greet": "greet", "thanks": "thanks", "goodbye": "goodbye",
                            "bot_challenge": "bot_challenge", "help": "help"}[intent], menu=intent == "help")
        elif intent in ("affirm", "deny") and ctx.state.awaiting_feedback and len(question.split()) <= 4:
            search_id = ctx.state.awaiting_feedback
            search = await self.states.search(ctx.customer.chat_id, search_id)
            if search is None:
                self._say(ctx, "expired")
            elif intent == "affirm":
                await self._helped(ctx, search_id, search)
            else:
                await self._not_helped(ctx, search_id, search)
        elif intent == "cancel" and not ctx.state.awaiting_feedback:
            self._say(ctx, "cancel_none")
        else:
            await self._search(ctx, text)

    async def _search(self, ctx: _Context, text: str, unsure: HandoffReason = HandoffReason.BOT_UNSURE) -> None:
        started = time.perf_counter()
        try:
            result = await self.kb.search_async(text, lang=ctx.lang)
        except Exception as error:  # the customer is never left without an answer; the error is logged
            log.exception("knowledge-base search failed")
            if self.observer is not None:
                self.observer.search_failed(error)
            self._say(ctx, "error", buttons=((self._human_button(ctx),),))
            return
        if self.observer is not None:
            self.observer.searched(result, time.perf_counter() - started)
        ctx.turns.append(_decision_turn(result, ctx.lang))
        search = ShownSearch(
            question=text,
            lang=ctx.lang,
            decision=result.decision.value,
            confidence=result.confidence,
            matches=[{"article_id": m.article_id, "title": m.title, "score": round(m.score, 4), "lang": m.lang}
                     for m in result.matches],
        )
        if result.decision is not Decision.ANSWER:
            await self._gap(ctx, text, result.decision.value, result)
        if result.decision is Decision.ANSWER and result.best is not None:
            search.shown.append(result.best.article_id)
            search_id = await self.states.remember_search(ctx.customer.chat_id, search)
            await self._answer(ctx, result.best.article_id, search_id)
        elif result.decision is Decision.CLARIFY and result.matches:
            search_id = await self.states.remember_search(ctx.customer.chat_id, search)
            self._offer(ctx, "clarify", search_id, search, list(range(len(search.matches))))
            search.shown.extend(m["article_id"] for m in search.matches)
            await self.states.update_search(ctx.customer.chat_id, search_id, search)
        else:
            await self.states.remember_search(ctx.customer.chat_id, search)
            await self._hand_off(ctx, unsure, text)

    async def _answer(self, ctx: _Context, article_id: str, search_id: str) -> None:
        article = self.kb.article(article_id, ctx.lang)
        t = self.texts
        # One message per answer: "did this help?" and its buttons go on the answer (on its last part when it
        # is split), so an answer costs one message of Telegram's budget, not two.
        parts = split_message(article_html(article.title, article.answer, t.get(ctx.lang, "ask_feedback")))
        for part in parts[:-1]:
            ctx.replies.append(Reply(part, html=True))
        ctx.replies.append(
            Reply(
                parts[-1],
                html=True,
                buttons=(
                    (Button(t.get(ctx.lang, "btn_yes"), Action.HELPED, search_id),
                     Button(t.get(ctx.lang, "btn_no"), Action.NOT_HELPED, search_id)),
                    (self._human_button(ctx, search_id),),
                ),
            )
        )
        ctx.state.last_search = search_id
        ctx.state.awaiting_feedback = search_id
        if self.answers is not None:
            await self.answers.answered(ctx.customer.chat_id, search_id, article_id, ctx.lang)
        if self.surveys is not None:
            await self.surveys.answer_given(ctx.customer, ctx.lang, f"answer:{search_id}", [article_id])

    def _offer(self, ctx: _Context, key: str, search_id: str, search: ShownSearch, indexes: list[int]) -> None:
        rows: list[tuple[Button, ...]] = []
        for index in indexes[:3]:
            match = search.matches[index]
            title = self.kb.article(match["article_id"], ctx.lang).title
            rows.append((Button(_short(title), Action.CHOOSE, search_id, index),))
        rows.append((Button(self.texts.get(ctx.lang, "btn_none"), Action.NONE_OF_THESE, search_id),
                     self._human_button(ctx, search_id)))
        self._say(ctx, key, buttons=tuple(rows))
        ctx.state.last_search = search_id
        ctx.state.awaiting_feedback = ""

    def _human_button(self, ctx: _Context, search_id: str = "") -> Button:
        return Button(self.texts.get(ctx.lang, "btn_human"), Action.HUMAN, search_id)

    # ------------------------------------------------------------------ buttons

    async def _helped(self, ctx: _Context, search_id: str, search: ShownSearch) -> None:
        ctx.state.negative_streak = 0
        ctx.state.awaiting_feedback = ""
        ctx.turns.append(Turn("customer", "feedback", "helpful", ctx.lang,
                              {"search": search_id, "articles": search.shown[-1:]}))
        self._say(ctx, "feedback_yes")
        if self.answers is not None:
            await self.answers.feedback(ctx.customer.chat_id, search_id, helpful=True)
        if self.surveys is not None:
            survey = await self.surveys.after_helped(ctx.customer, ctx.lang, f"answer:{search_id}", search.shown[-1:])
            if survey is not None:
                ctx.replies.append(survey)

    async def _not_helped(self, ctx: _Context, search_id: str, search: ShownSearch) -> None:
        ctx.state.negative_streak += 1
        ctx.state.awaiting_feedback = ""
        ctx.turns.append(Turn("customer", "feedback", "not_helpful", ctx.lang,
                              {"search": search_id, "articles": search.shown[-1:]}))
        await self._gap(ctx, search.question, "not_helpful", None, search.shown[-1] if search.shown else "")
        if self.answers is not None:
            await self.answers.feedback(ctx.customer.chat_id, search_id, helpful=False)
        if ctx.state.negative_streak >= 2:
            ctx.state.frustrated = True
            ctx.state.frustration_reasons = sorted(set(ctx.state.frustration_reasons) | {"negative_feedback_twice"})
            await self._hand_off(ctx, HandoffReason.NEGATIVE_FEEDBACK, search.question)
            return
        remaining = [i for i, m in enumerate(search.matches) if m["article_id"] not in search.shown]
        if remaining:
            self._offer(ctx, "feedback_no_alternatives", search_id, search, remaining)
            search.shown.extend(search.matches[i]["article_id"] for i in remaining[:3])
            await self.states.update_search(ctx.customer.chat_id, search_id, search)
        else:
            self._say(ctx, "feedback_no_more", buttons=((self._human_button(ctx, search_id),),))

    async def _chosen(self, ctx: _Context, search_id: str, search: ShownSearch, index: int) -> None:
        if not 0 <= index < len(search.matches):
            self._say(ctx, "expired")
            return
        article_id = search.matches[index]["article_id"]
        search.shown.append(article_id)
        await self.states.update_search(ctx.customer.chat_id, search_id, search)
        ctx.turns.append(Turn("customer", "choice", article_id, ctx.lang, {"search": search_id}))
        await self._answer(ctx, article_id, search_id)

    async def _none_of_these(self, ctx: _Context, search_id: str, search: ShownSearch) -> None:
        ctx.state.negative_streak += 1
        if ctx.state.negative_streak >= 2:
            await self._hand_off(ctx, HandoffReason.NEGATIVE_FEEDBACK, search.question)
            return
        self._say(ctx, "none_of_these", buttons=((self._human_button(ctx, search_id),),))

    async def _gap(
        self, ctx: _Context, question: str, reason: str, result: SearchResult | None, article: str = ""
    ) -> None:
        """Remember a question the knowledge base did not answer well, for the admins' /gaps."""
        if self.gaps is None:
            return
        best = result.best if result is not None else None
        await self.gaps.record(
            Gap(
                question=question,
                reason=reason,
                lang=ctx.lang,
                closest_article=best.article_id if best is not None else article,
                confidence=result.confidence if result is not None else 0.0,
            )
        )

    # ------------------------------------------------------------------ hand-off

    async def _hand_off(self, ctx: _Context, reason: HandoffReason, question: str) -> None:
        await self._write(ctx)  # the person gets the whole conversation, this message's turns included
        context = await self.log.recent(ctx.customer.chat_id, 50)
        outcome = await self.handoff.request(
            HandoffRequest(
                customer=ctx.customer,
                reason=reason,
                lang=ctx.lang,
                question=question,
                frustration=tuple(ctx.state.frustration_reasons),
                context=tuple(context),
            )
        )
        ctx.state.negative_streak = 0
        ctx.state.awaiting_feedback = ""
        ctx.replies.extend(outcome.replies)
        if self.answers is not None:  # even out of hours: the answer did not do
            await self.answers.handed_off(ctx.customer.chat_id)
        ctx.turns.append(
            Turn("system", "handoff", reason.value, ctx.lang, {"ticket": outcome.ticket_id}),
        )


def _language_from_code(code: str | None) -> str:
    """The customer's Telegram language where it is one the bot speaks ("" for another: then what he wrote
    before decides, not a guess from his app's language)."""
    lang = normalize_language_code(code)
    return lang if lang is not None and code and code.lower()[:2] in ("ru", "uk", "ua", "en") else ""


def _strongly_frustrated(state: FrustrationState) -> bool:
    return bool(set(state.reasons) & _STRONG_FRUSTRATION) or len(state.reasons) >= 2


def _has_question(question: str, intent: str) -> bool:
    """A greeting or thanks that also carries a question is a question ("Добрый день, где мой заказ?")."""
    return intent in ("greet", "thanks", "goodbye") and len(question.split()) >= 3


def _frustration_history(history: Sequence[Turn]) -> list[ConversationTurn]:
    turns = []
    for turn in history:
        at = datetime.fromtimestamp(turn.at, UTC)
        if turn.role == "customer" and turn.kind in ("text", "edited_text"):
            turns.append(ConversationTurn(role="customer", text=turn.text, at=at))
        elif turn.kind == "feedback" and turn.text in ("helpful", "not_helpful"):
            turns.append(ConversationTurn(role="bot", text="", feedback=turn.text, at=at))  # type: ignore[arg-type]
    return turns


def _decision_turn(result: SearchResult, lang: str) -> Turn:
    return Turn(
        "bot",
        "decision",
        result.decision.value,
        lang,
        {
            "confidence": round(result.confidence, 4),
            "matches": [{"article_id": m.article_id, "score": round(m.score, 4)} for m in result.matches],
            "index_version": result.index_version,
            "question": result.question,
        },
    )


def _bot_turn(reply: Reply, lang: str) -> Turn:
    data = {"buttons": [[b.text for b in row] for row in reply.buttons]} if reply.buttons else {}
    return Turn("bot", "message", reply.text, lang, data)


def _short(title: str, limit: int = 60) -> str:
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


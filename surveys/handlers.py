"""Surveys in Telegram: the one-tap questions, their in-place edits, comments, and alerts on low scores.

``SurveyMessenger`` sends a survey and reacts to its taps; the router at the bottom receives the taps, the
"write a comment" flow, and Telegram's notice that a customer blocked or unblocked the bot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, ChatMemberUpdated, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.texts import Texts
from surveys.models import Question, Survey, SurveyTrigger, TapOutcome
from surveys.service import SurveyService

__all__ = ["SurveyCallback", "SurveyMessenger", "build_router"]

log = logging.getLogger(__name__)

Transcript = Callable[[Survey], Awaitable[str]]


class SurveyCallback(CallbackData, prefix="s"):
    """A tap on a survey: survey id, question, value ("c"/"k" for the comment offer). Under 64 bytes."""

    i: str
    q: str
    v: str


class SurveyMessenger:
    """Sends surveys, records taps, edits the survey message in place, and alerts supervisors."""

    def __init__(
        self,
        service: SurveyService,
        bot: Bot,
        texts: Texts,
        staff_texts: Texts,
        *,
        alert_chat_ids: Sequence[int] = (),
        more_alert_chat_ids: Callable[[], Awaitable[Iterable[int]]] | None = None,
        transcript: Transcript | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.bot = bot
        self.texts = texts
        self.staff_texts = staff_texts
        self.alert_chat_ids = list(dict.fromkeys(alert_chat_ids))
        self._more_alert_chat_ids = more_alert_chat_ids  # e.g. supervisors added by admins since the start
        self._transcript = transcript
        self._clock = clock
        self.alerts_sent = 0

    # ------------------------------------------------------------------ questions

    def question(self, survey: Survey, question: Question, prefix: str = "") -> tuple[str, InlineKeyboardMarkup]:
        lang = survey.lang
        if question is Question.CSAT:
            key = "csat_agent" if survey.trigger is SurveyTrigger.AGENT_CLOSED else "csat_bot"
        else:
            key = question.value
        text = (prefix + "\n\n" if prefix else "") + self.texts.get(lang, key)
        values = range(11) if question is Question.NPS else range(1, 6)

        def button(value: int) -> InlineKeyboardButton:
            data = SurveyCallback(i=survey.id, q=question.value, v=str(value)).pack()
            return InlineKeyboardButton(text=str(value), callback_data=data)

        buttons = [button(v) for v in values]
        rows = [buttons] if len(buttons) <= 5 else [buttons[:6], buttons[6:]]
        return text, InlineKeyboardMarkup(inline_keyboard=rows)

    def first_message(self, survey: Survey) -> tuple[str, InlineKeyboardMarkup]:
        first = survey.next_question
        assert first is not None
        return self.question(survey, first)

    async def send(self, survey: Survey) -> bool:
        """Send the survey's first question now; a customer who blocked the bot is remembered, not retried."""
        text, markup = self.first_message(survey)
        try:
            sent = await self.bot.send_message(survey.chat_id, text, reply_markup=markup)
        except TelegramForbiddenError:
            await self.service.not_delivered(survey, blocked=True)
            return False
        except TelegramBadRequest as exc:
            log.warning("survey %s not sent: %s", survey.id, exc)
            await self.service.not_delivered(survey, blocked=False)
            return False
        await self.service.attach_message(survey.id, sent.message_id)
        return True

    # ------------------------------------------------------------------ taps

    async def on_tap(self, query: CallbackQuery, data: SurveyCallback) -> None:
        if data.q == "comment":
            await self._comment_choice(query, data)
            return
        try:
            value = int(data.v)
        except ValueError:
            await query.answer()
            return
        result = await self.service.tap(data.i, query.from_user.id, data.q, value)
        survey = result.survey
        lang = survey.lang if survey is not None else self.texts.lang((query.from_user.language_code or "")[:2])
        if result.outcome is not TapOutcome.ACCEPTED:
            notice = {
                TapOutcome.EXPIRED: "survey_closed",
                TapOutcome.REPEATED: "already_counted",
                TapOutcome.NOT_YOURS: "not_yours",
            }.get(result.outcome, "survey_closed")
            await query.answer(self.texts.get(lang, notice))
            return
        await query.answer()
        assert survey is not None
        next_question = survey.next_question
        if next_question is not None:
            text, markup = self.question(survey, next_question, prefix=self.texts.get(lang, "thanks_next"))
        elif survey.low:
            text = self.texts.get(lang, "thanks_low")
            markup = InlineKeyboardMarkup(inline_keyboard=[[
                InlineKeyboardButton(text=self.texts.get(lang, "btn_comment"),
                                     callback_data=SurveyCallback(i=survey.id, q="comment", v="c").pack()),
                InlineKeyboardButton(text=self.texts.get(lang, "btn_skip"),
                                     callback_data=SurveyCallback(i=survey.id, q="comment", v="k").pack()),
            ]])
        else:
            text, markup = self.texts.get(lang, "thanks_done"), None
        if isinstance(query.message, Message):
            try:
                await query.message.edit_text(text, reply_markup=markup)
            except TelegramBadRequest as exc:
                log.info("survey %s message not edited: %s", survey.id, exc)
        if result.became_low:
            await self.alert(survey)

    async def _comment_choice(self, query: CallbackQuery, data: SurveyCallback) -> None:
        survey = await self.service.get(data.i)
        if survey is None or survey.user_id != query.from_user.id:
            await query.answer()
            return
        await query.answer()
        lang = survey.lang
        if data.v == "c":
            await self.service.await_comment(survey.chat_id, survey.id)
            text = self.texts.get(lang, "comment_prompt")
        else:
            text = self.texts.get(lang, "thanks_done")
        if isinstance(query.message, Message):
            try:
                await query.message.edit_text(text, reply_markup=None)
            except TelegramBadRequest:
                pass

    async def take_comment(self, message: Message) -> bool:
        """The customer's message is the comment he offered to write: record it, thank him, tell supervisors."""
        survey_id = await self.service.take_comment_slot(message.chat.id)
        if not survey_id:
            return False
        survey = await self.service.record_comment(survey_id, message.text or message.caption or "")
        if survey is None:
            return False
        await message.answer(self.texts.get(survey.lang, "comment_thanks"))
        await self.forward_comment(survey)
        return True

    async def _alert_chats(self) -> list[int]:
        more = await self._more_alert_chat_ids() if self._more_alert_chat_ids is not None else ()
        return list(dict.fromkeys([*self.alert_chat_ids, *more]))

    async def forward_comment(self, survey: Survey) -> None:
        """A low-score survey's comment, to the supervisors who got its alert."""
        for chat_id in await self._alert_chats():
            lang = self.staff_texts.default_lang
            await self._tell(chat_id, self.staff_texts.get(
                lang, "low_score_comment", ticket=f" ({survey.ticket_id})" if survey.ticket_id else "",
                customer=survey.customer_name, comment=survey.comment,
            ))

    # ------------------------------------------------------------------ alerts

    async def alert(self, survey: Survey) -> None:
        """A CSAT or CES of 1-2: the scores, the comment, the agent and the conversation, to supervisors at once."""
        transcript = await self._transcript(survey) if self._transcript is not None else "—"
        scores = ", ".join(f"{q.upper()} {v}" for q, v in survey.answers.items())
        for chat_id in await self._alert_chats():
            lang = self.staff_texts.default_lang
            text = self.staff_texts.get(
                lang,
                "low_score_alert",
                ticket=f" ({survey.ticket_id})" if survey.ticket_id else "",
                scores=scores,
                customer=survey.customer_name or str(survey.chat_id),
                lang=survey.lang,
                agent=f" · {survey.agent_name}" if survey.agent_name else "",
                comment=survey.comment or self.staff_texts.get(lang, "no_comment"),
                transcript=transcript,
            )
            await self._tell(chat_id, text)
        self.alerts_sent += 1

    async def _tell(self, chat_id: int, text: str) -> None:
        try:
            await self.bot.send_message(chat_id, text[:4000])
        except (TelegramForbiddenError, TelegramBadRequest) as exc:
            log.warning("cannot reach %s with a survey alert: %s", chat_id, exc)


async def survey_tap(query: CallbackQuery, callback_data: SurveyCallback, survey_messenger: SurveyMessenger) -> None:
    await survey_messenger.on_tap(query, callback_data)


async def bot_blocked(event: ChatMemberUpdated, survey_messenger: SurveyMessenger) -> None:
    """Telegram tells the bot when a customer blocks or unblocks it: no surveys while blocked."""
    status = event.new_chat_member.status
    await survey_messenger.service.set_blocked(event.chat.id, status in ("kicked", "left"))


def build_router() -> Router:
    router = Router(name="surveys")
    router.callback_query.register(survey_tap, SurveyCallback.filter())
    router.my_chat_member.register(bot_blocked, F.chat.type == "private")
    return router

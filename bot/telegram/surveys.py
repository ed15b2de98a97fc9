"""Surveys in Telegram: the one-tap questions, their in-place edits, comments, and Telegram's "blocked" notice.

``SurveyMessenger`` sends a survey's first question and reacts to its taps, editing the message in place; the
words and buttons come from ``surveys.questions``, a bad score's alert from ``surveys.alerts``. The router at the
bottom receives the taps and Telegram's notice that a customer blocked or unblocked the bot.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, ChatMemberUpdated, InlineKeyboardButton, InlineKeyboardMarkup, Message

from surveys.alerts import LowScoreAlerts
from surveys.models import Survey, TapOutcome
from surveys.questions import SurveyMessage, SurveyQuestions
from surveys.service import SurveyService

__all__ = ["SurveyCallback", "SurveyMessenger", "build_router", "keyboard"]

log = logging.getLogger(__name__)


class SurveyCallback(CallbackData, prefix="s"):
    """A tap on a survey: survey id, question, value ("c"/"k" for the comment offer); packs as
    ``surveys.questions.tap_data`` does. Under 64 bytes."""

    i: str
    q: str
    v: str


def keyboard(message: SurveyMessage) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=label, callback_data=data) for label, data in row] for row in message.buttons
    ])


class SurveyMessenger:
    """Sends surveys, records taps, edits the survey message in place, and has bad scores alerted."""

    def __init__(self, service: SurveyService, bot: Bot, questions: SurveyQuestions, alerts: LowScoreAlerts) -> None:
        self.service = service
        self.bot = bot
        self.questions = questions
        self.alerts = alerts

    async def send(self, survey: Survey) -> bool:
        """Send the survey's first question now; a customer who blocked the bot is remembered, not retried."""
        first = self.questions.first(survey)
        try:
            sent = await self.bot.send_message(survey.chat_id, first.text, reply_markup=keyboard(first))
        except TelegramForbiddenError:
            await self.service.not_delivered(survey, blocked=True)
            return False
        except TelegramBadRequest as exc:
            log.warning("survey %s not sent: %s", survey.id, exc)
            await self.service.not_delivered(survey, blocked=False)
            return False
        await self.service.attach_message(survey.id, sent.message_id)
        return True

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
        texts = self.questions.texts
        lang = survey.lang if survey is not None else texts.for_code(query.from_user.language_code)
        if result.outcome is not TapOutcome.ACCEPTED:
            notice = {
                TapOutcome.EXPIRED: "survey_closed",
                TapOutcome.REPEATED: "already_counted",
                TapOutcome.NOT_YOURS: "not_yours",
            }.get(result.outcome, "survey_closed")
            await query.answer(texts.get(lang, notice))
            return
        await query.answer()
        assert survey is not None
        following = self.questions.after_answer(survey)
        await self._edit(query, following.text, keyboard(following), survey.id)
        if result.became_low:
            await self.alerts.alert(survey)

    async def _comment_choice(self, query: CallbackQuery, data: SurveyCallback) -> None:
        survey = await self.service.get(data.i)
        await query.answer()
        if survey is None or survey.user_id != query.from_user.id:
            return
        write = data.v == "c"
        if write:
            await self.service.await_comment(survey.chat_id, survey.id)
        await self._edit(query, self.questions.after_comment_choice(survey, write), None, survey.id)

    async def _edit(self, query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None, survey_id: str) -> None:
        if isinstance(query.message, Message):
            try:
                await query.message.edit_text(text, reply_markup=markup)
            except TelegramBadRequest as exc:
                log.info("survey %s message not edited: %s", survey_id, exc)

    async def take_comment(self, message: Message) -> bool:
        """The customer's message is the comment he offered to write: record it, thank him, tell supervisors."""
        survey_id = await self.service.take_comment_slot(message.chat.id)
        if not survey_id:
            return False
        survey = await self.service.record_comment(survey_id, message.text or message.caption or "")
        if survey is None:
            return False
        await message.answer(self.questions.texts.get(survey.lang, "comment_thanks"))
        await self.alerts.forward_comment(survey)
        return True


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

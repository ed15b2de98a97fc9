"""Surveys in Telegram: the one-tap questions, their in-place edits, comments, and Telegram's "blocked" notice.

``SurveyMessenger`` sends a survey's first question and shows what its taps do (``surveys.taps``), editing the
message in place; the words and buttons come from ``surveys.questions``. The router at the
bottom receives the taps and Telegram's notice that a customer blocked or unblocked the bot.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, ChatMemberUpdated, InlineKeyboardButton, InlineKeyboardMarkup, Message

from surveys.models import Survey
from surveys.questions import SurveyMessage, SurveyQuestions
from surveys.service import SurveyService
from surveys.taps import SurveyTaps

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

    def __init__(self, service: SurveyService, bot: Bot, questions: SurveyQuestions, taps: SurveyTaps) -> None:
        self.service = service
        self.bot = bot
        self.questions = questions
        self.taps = taps

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
        reply = await self.taps.tap(data.pack(), query.from_user.id, query.from_user.language_code)
        await query.answer(reply.notice if reply is not None and reply.notice else None)
        if reply is not None and reply.message is not None and isinstance(query.message, Message):
            try:
                await query.message.edit_text(reply.message.text, reply_markup=keyboard(reply.message))
            except TelegramBadRequest as exc:
                log.info("survey %s message not edited: %s", data.i, exc)

    async def take_comment(self, message: Message) -> bool:
        """The customer's message is the comment he offered to write: record it, thank him, tell supervisors."""
        thanks = await self.taps.comment(message.chat.id, message.text or message.caption or "")
        if thanks is None:
            return False
        await message.answer(thanks)
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

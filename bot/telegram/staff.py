"""The hand-off desk's ports on Telegram: agents' messages with their buttons, the board, customers' status.

``TelegramStaff`` packs each ``StaffButton`` into ``TicketCallback`` data (``bot.telegram.routers.agents``
receives the taps) and ``TelegramCustomers`` edits a message the customer was sent. A person Telegram will not
let the bot reach (blocked, never started it) is logged, not raised: the desk goes on with the others.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from handoff.ports import StaffButton, StaffButtons

__all__ = ["TelegramCustomers", "TelegramStaff", "TicketCallback", "markup"]

log = logging.getLogger(__name__)


class TicketCallback(CallbackData, prefix="t"):
    """Agents' buttons: take, close (with outcome), switch, transfer, canned reply, KB article. Packs as
    ``StaffButton.data`` does (the fields in this order)."""

    a: str  # take | close | switch | transfer | canned | kb
    t: str = ""  # ticket id
    v: str = ""  # outcome, agent id, canned name or article number


def markup(buttons: StaffButtons) -> InlineKeyboardMarkup | None:
    """Telegram's keyboard for the desk's buttons (None for none)."""
    if not buttons:
        return None

    def button(b: StaffButton) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=b.text, callback_data=b.data)  # TicketCallback reads it back

    return InlineKeyboardMarkup(inline_keyboard=[[button(b) for b in row] for row in buttons])


class TelegramStaff:
    """``handoff.ports.StaffChannel`` over the Bot API."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, chat_id: int, text: str, buttons: StaffButtons = ()) -> int | None:
        try:
            sent = await self.bot.send_message(chat_id, text, reply_markup=markup(buttons))
        except (TelegramForbiddenError, TelegramBadRequest) as exc:
            log.warning("cannot reach %s: %s", chat_id, exc)
            return None
        return sent.message_id

    async def remove_buttons(self, chat_id: int, message_id: int) -> None:
        try:
            await self.bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=None)
        except (TelegramForbiddenError, TelegramBadRequest):
            pass  # already edited, deleted, or the chat is gone

    async def show_board(self, chat_id: int, text: str, message_id: int) -> int:
        if message_id:
            try:
                await self.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
                return message_id
            except TelegramBadRequest as exc:
                if "not modified" in str(exc):
                    return message_id
        return await self.send(chat_id, text) or 0


class TelegramCustomers:
    """``handoff.ports.CustomerChannel`` over the Bot API."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def edit(self, chat_id: int, message_id: int, text: str) -> bool:
        try:
            await self.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            log.info("message %s in %s not edited: %s", message_id, chat_id, exc)
            return False
        return True

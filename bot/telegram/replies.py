"""Sending the dialog's replies as Telegram messages: inline buttons, the persistent menu, HTML."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    LinkPreviewOptions,
    Message,
    ReplyKeyboardMarkup,
)

from bot.core.ports import Action, Button, Reply
from bot.core.texts import Texts

__all__ = ["DialogCallback", "inline_keyboard", "menu_keyboard", "send_replies"]


class DialogCallback(CallbackData, prefix="d"):
    """A button under a bot message: what it does, the search (or ticket) it belongs to, which article."""

    a: str
    s: str = ""
    i: int = 0


def inline_keyboard(buttons: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=b.text,
                    callback_data=b.callback
                    or DialogCallback(a=b.action.value if b.action else "", s=b.search_id, i=b.index).pack(),
                )
                for b in row
            ]
            for row in buttons
        ]
    )


def menu_keyboard(texts: Texts, lang: str) -> ReplyKeyboardMarkup:
    """The persistent menu: the way to a person is always one tap away."""
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=texts.get(lang, "menu_human")), KeyboardButton(text=texts.get(lang, "menu_help"))]],
        resize_keyboard=True,
        is_persistent=True,
    )


TrackCallback = Callable[[str, Message], Awaitable[None]]


async def send_replies(
    bot: Bot,
    chat_id: int,
    replies: Sequence[Reply],
    texts: Texts,
    lang: str,
    *,
    on_tracked: TrackCallback | None = None,
) -> list[Message]:
    sent = []
    for reply in replies:
        markup = inline_keyboard(reply.buttons) if reply.buttons else (menu_keyboard(texts, lang) if reply.menu else None)
        message = await bot.send_message(
            chat_id,
            reply.text,
            parse_mode=ParseMode.HTML if reply.html else None,
            reply_markup=markup,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )
        sent.append(message)
        if reply.track and on_tracked is not None:
            await on_tracked(reply.track, message)
    return sent


def parse_action(value: str) -> Action | None:
    try:
        return Action(value)
    except ValueError:
        return None

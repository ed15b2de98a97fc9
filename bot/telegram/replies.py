"""Sending the dialog's replies as Telegram messages: inline buttons, the persistent menu, HTML."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

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

__all__ = ["DialogCallback", "inline_keyboard", "menu_keyboard", "send_replies", "typing_while_slow"]

log = logging.getLogger(__name__)

TYPING_AFTER = 0.5  # seconds an answer may take before the customer is shown "typing…"
TYPING_LASTS = 4.5  # Telegram shows it for 5 s or until the next message: shown again while the answer takes


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


@asynccontextmanager
async def typing_while_slow(bot: Bot, chat_id: int) -> AsyncIterator[None]:
    """Shows the customer "typing…" if what runs inside takes longer than ``TYPING_AFTER`` seconds.

    A quick answer needs no indicator, and asking Telegram for it first would delay every answer by a round
    trip (and cost a request of the bot's budget); a slow one, when many customers ask at once, shows it.
    """
    async def show() -> None:
        await asyncio.sleep(TYPING_AFTER)
        while True:
            try:
                await bot.send_chat_action(chat_id, "typing")
            except Exception as exc:  # only a courtesy: the answer itself is what counts
                log.debug("could not show typing in chat %s: %s", chat_id, exc)
                return
            await asyncio.sleep(TYPING_LASTS)

    indicator = asyncio.create_task(show(), name=f"typing-{chat_id}")
    try:
        yield
    finally:
        indicator.cancel()

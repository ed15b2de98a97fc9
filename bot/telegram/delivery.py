"""The relay's delivery on Telegram: words, HTML and buttons sent, customers' and agents' messages copied.

Telegram's answers become the relay's (``handoff.ports``): a blocked bot or a refused message is
``DeliveryRefused``, a rate limit ``DeliverLater``, a network failure ``ChannelUnreachable``.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramNetworkError, TelegramRetryAfter
from aiogram.types import FSInputFile, InlineKeyboardButton, InlineKeyboardMarkup, Message

from handoff.ports import ChannelUnreachable, DeliverLater, DeliveryRefused, OutboxEntry

__all__ = ["TelegramDelivery", "file_of", "message_kind"]

_KINDS = ("text", "photo", "document", "voice", "audio", "video", "video_note", "sticker", "animation", "location",
          "venue", "contact")


def message_kind(message: Message) -> str:
    """What a Telegram message carries: text, photo, document... (``other`` for the rest)."""
    for kind in _KINDS:
        if getattr(message, kind, None):
            return kind
    return "other"


def file_of(message: Message) -> tuple[str, str]:
    """(Telegram file id, file name) of the photo or document a message carries; empty strings for none."""
    if message.photo:
        return message.photo[-1].file_id, "photo.jpg"
    if message.document:
        return message.document.file_id, message.document.file_name or "document"
    return "", ""


class TelegramDelivery:
    """``handoff.ports.Delivery`` over the Bot API: every chat not claimed by another channel is a Telegram one."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    def reaches(self, chat_id: int) -> bool:
        return True

    async def deliver(self, entry: OutboxEntry) -> Sequence[int]:
        try:
            return await self._send(entry)
        except TelegramRetryAfter as exc:
            raise DeliverLater(exc.retry_after) from exc
        except TelegramForbiddenError as exc:
            raise DeliveryRefused(str(exc), blocked=True) from exc
        except TelegramBadRequest as exc:
            raise DeliveryRefused(str(exc)) from exc
        except TelegramNetworkError as exc:
            raise ChannelUnreachable(str(exc)) from exc

    async def _send(self, entry: OutboxEntry) -> list[int]:
        if entry.attachment:  # a file kept by another channel (a web visitor's upload)
            caption = "\n".join(part for part in (entry.header, entry.text) if part)[:1024]
            document = FSInputFile(entry.attachment, filename=entry.file_name or None)
            return [(await self.bot.send_document(entry.to, document, caption=caption or None)).message_id]
        if not entry.is_copy:
            sent = await self.bot.send_message(
                entry.to, entry.text, parse_mode="HTML" if entry.html else None, reply_markup=_keyboard(entry.buttons)
            )
            return [sent.message_id]
        if entry.header and entry.kind == "text" and entry.text:
            return [(await self.bot.send_message(entry.to, f"{entry.header}\n{entry.text}")).message_id]
        shown = []
        if entry.header:
            shown.append((await self.bot.send_message(entry.to, entry.header)).message_id)
        copied = await self.bot.copy_message(
            chat_id=entry.to, from_chat_id=entry.source_chat, message_id=entry.source_message
        )
        return [*shown, copied.message_id]


def _keyboard(buttons: tuple[tuple[tuple[str, str], ...], ...]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data) for text, data in row] for row in buttons]
    )

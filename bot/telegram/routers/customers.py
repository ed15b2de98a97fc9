"""Customers' private chats with the bot: commands, questions, media, edits and the dialog's buttons.

A customer whose question is with a person (an open ticket) has his messages relayed to the hand-off instead
of answered by the bot; everything else goes to ``CustomerDialog``.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message, User

from bot.core.dialog import CustomerDialog
from bot.core.ports import Action, Customer, Reply
from bot.telegram.delivery import message_kind
from bot.telegram.replies import DialogCallback, TrackCallback, parse_action, send_replies, typing_while_slow
from bot.telegram.surveys import SurveyMessenger
from handoff import HandoffDesk
from handoff.customer import CustomerHandoff
from handoff.relay import Relay

__all__ = ["build_router"]

log = logging.getLogger(__name__)


_MEDIA_KINDS = (
    ("photo", "photo"),
    ("document", "document"),
    ("voice", "voice"),
    ("audio", "voice"),
    ("video_note", "voice"),
    ("sticker", "sticker"),
    ("animation", "sticker"),
    ("location", "location"),
    ("venue", "location"),
    ("video", "photo"),
    ("contact", "other"),
)


def customer_of(user: User, chat_id: int) -> Customer:
    return Customer(
        chat_id=chat_id,
        user_id=user.id,
        name=user.full_name or user.first_name,
        username=user.username,
        language_code=user.language_code,
    )


async def _reply(
    bot: Bot, chat_id: int, replies: list[Reply], dialog: CustomerDialog, track: TrackCallback, lang: str = ""
) -> None:
    # The language is the menu keyboard's: it is read only when a reply carries the menu (most answers do not).
    if not lang and any(reply.menu for reply in replies):
        lang = await _lang(dialog, chat_id)
    await send_replies(bot, chat_id, replies, dialog.texts, lang or dialog.texts.default_lang, on_tracked=track)


async def _lang(dialog: CustomerDialog, chat_id: int) -> str:
    return dialog.texts.lang((await dialog.states.load(chat_id)).lang)


async def _relayed(
    message: Message, desk: HandoffDesk, relay: Relay, follow: tuple[CustomerHandoff, CustomerDialog] | None = None
) -> bool:
    """Relay the message to the hand-off when the customer has an open ticket (the ticket's language follows his
    words: ``CustomerHandoff.follow_language``)."""
    ticket = await desk.open_ticket_of(message.chat.id)
    if ticket is None:
        return False
    words = message.text or message.caption or ""
    if follow is not None:
        customer_handoff, dialog = follow
        followed = await customer_handoff.follow_language(
            ticket, words, message.from_user.language_code if message.from_user else None
        )
        if followed.lang != ticket.lang:
            ticket = followed
            await dialog.remember_language(message.chat.id, ticket.lang)
    await relay.customer_message(ticket, message.chat.id, message.message_id, message_kind(message), words)
    return True


async def start(message: Message, bot: Bot, dialog: CustomerDialog, desk: HandoffDesk, track_sent: TrackCallback) -> None:
    assert message.from_user is not None
    customer = customer_of(message.from_user, message.chat.id)
    replies = await dialog.start(customer)
    await _reply(bot, message.chat.id, replies, dialog, track_sent)


async def help_command(message: Message, bot: Bot, dialog: CustomerDialog, desk: HandoffDesk, track_sent: TrackCallback) -> None:
    assert message.from_user is not None
    replies = await dialog.help(customer_of(message.from_user, message.chat.id))
    await _reply(bot, message.chat.id, replies, dialog, track_sent)


async def human_command(
    message: Message, bot: Bot, dialog: CustomerDialog, desk: HandoffDesk, relay: Relay
, track_sent: TrackCallback) -> None:
    assert message.from_user is not None
    if await _relayed(message, desk, relay):
        return
    replies = await dialog.ask_for_person(customer_of(message.from_user, message.chat.id), "/human")
    await _reply(bot, message.chat.id, replies, dialog, track_sent)


async def text_message(
    message: Message,
    bot: Bot,
    dialog: CustomerDialog,
    desk: HandoffDesk,
    relay: Relay,
    customer_handoff: CustomerHandoff,
    survey_messenger: SurveyMessenger,
    track_sent: TrackCallback,
) -> None:
    assert message.from_user is not None and message.text is not None
    if await survey_messenger.take_comment(message):  # the comment he offered after a low score
        return
    if await _relayed(message, desk, relay, (customer_handoff, dialog)):
        return
    async with typing_while_slow(bot, message.chat.id):
        replies = await dialog.text(customer_of(message.from_user, message.chat.id), message.text)
    await _reply(bot, message.chat.id, replies, dialog, track_sent)


async def edited_text(
    message: Message, bot: Bot, dialog: CustomerDialog, desk: HandoffDesk, relay: Relay,
    customer_handoff: CustomerHandoff, track_sent: TrackCallback,
) -> None:
    assert message.from_user is not None and message.text is not None
    if await _relayed(message, desk, relay, (customer_handoff, dialog)):
        return
    replies = await dialog.text(customer_of(message.from_user, message.chat.id), message.text, edited=True)
    await _reply(bot, message.chat.id, replies, dialog, track_sent)


async def other_message(
    message: Message, bot: Bot, dialog: CustomerDialog, desk: HandoffDesk, relay: Relay,
    customer_handoff: CustomerHandoff, track_sent: TrackCallback,
) -> None:
    """Photos, voice, stickers, documents, locations...: to the agent if one is involved, else a polite reply."""
    if message.from_user is None:
        return
    if await _relayed(message, desk, relay, (customer_handoff, dialog)):
        return
    kind = next((k for attribute, k in _MEDIA_KINDS if getattr(message, attribute, None)), "other")
    replies = await dialog.media(customer_of(message.from_user, message.chat.id), kind, message.caption or "")
    await _reply(bot, message.chat.id, replies, dialog, track_sent)


async def other_edit(message: Message) -> None:
    """An edited caption or location: nothing to answer again."""


async def dialog_button(
    query: CallbackQuery,
    callback_data: DialogCallback,
    bot: Bot,
    dialog: CustomerDialog,
    desk: HandoffDesk,
    customer_handoff: CustomerHandoff,
    relay: Relay,
    track_sent: TrackCallback,
) -> None:
    action = parse_action(callback_data.a)
    chat_id = query.message.chat.id if query.message else query.from_user.id
    customer = customer_of(query.from_user, chat_id)
    await query.answer()
    if query.message is not None and isinstance(query.message, Message):
        # The choice is made: the buttons go, so an old tap cannot be repeated by mistake.
        try:
            await query.message.edit_reply_markup(reply_markup=None)
        except Exception:  # an already edited or too old message: the tap still counts
            log.debug("could not remove the buttons of message %s", query.message.message_id)
    if action is None:
        return
    if action is Action.CANCEL_WAIT:
        lang = await _lang(dialog, chat_id)
        reply, _ = await customer_handoff.cancel(chat_id, callback_data.s, lang)
        await _reply(bot, chat_id, [reply], dialog, track_sent, lang)
        return
    replies = await dialog.button(customer, action, callback_data.s, callback_data.i)
    await _reply(bot, chat_id, replies, dialog, track_sent)


def build_router() -> Router:
    """The customers' router; a new one per dispatcher (a router can belong to only one)."""
    router = Router(name="customers")
    router.message.filter(F.chat.type == "private")
    router.edited_message.filter(F.chat.type == "private")
    router.message.register(start, CommandStart())
    router.message.register(help_command, Command("help"))
    router.message.register(human_command, Command("human", "operator", "agent"))
    router.message.register(text_message, F.text)
    router.edited_message.register(edited_text, F.text)
    router.message.register(other_message)
    router.edited_message.register(other_edit)
    router.callback_query.register(dialog_button, DialogCallback.filter())
    return router

"""A local Telegram Bot API for one bot: the real bot runs against it in the demo and in the tests.

It speaks the part of the Bot API the bot uses, with Telegram's JSON shapes, error descriptions and limits
(text length, callback data size, HTML/MarkdownV2 parsing, blocked users, optional flood control), serves long
polling and webhooks, and plays the users' side::

    async with TelegramEmulator() as emulator:
        bot = Bot(emulator.token, session=BotApiSession(emulator.base_url))
        anna = EmulatedUser(id=1001, first_name="Anna", language_code="ru")
        await emulator.send_message(anna, "/start")
        [reply] = await emulator.wait_for_bot_messages(anna.id)
        await emulator.press_button(anna, reply, "Yes")

HTTP endpoints (all JSON; ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N, "description": ...}``):

``GET|POST /bot<token>/<method>``
    The Bot API (multipart, url-encoded, JSON or query parameters).
``GET /file/bot<token>/<file_path>``
    Downloads a file uploaded to the emulator (``file_path`` as returned by getFile).
``POST /_emulator/users/<user_id>/messages``
    ``{"text": "...", "first_name": ..., "username": ..., "language_code": "ru", "reply_to_message_id": ...,
    "chat_id": <group id>}``: the user writes; returns the user's Message. Unknown users are created.
``POST /_emulator/users/<user_id>/callbacks``
    ``{"message_id": 12, "data": "<button text or callback data>", "chat_id": ...}``: the user taps an inline
    button; returns the CallbackQuery.
``POST /_emulator/users/<user_id>/block`` and ``/unblock``
    The user blocks or unblocks the bot.
``GET /_emulator/chats/<chat_id>?after=<message_id>&wait=<seconds>``
    The chat and its messages (after ``after``), each with its current text, markup and edit history; with
    ``wait``, first waits up to that many seconds for a bot message after ``after``.
``GET /_emulator/requests?method=sendMessage``
    The log of Bot API calls with the status each got.
``POST /_emulator/reset``
    Forgets users, chats, updates and logs (the bot's webhook and commands stay).

For example: ``curl -d '{"text": "hi"}' localhost:8081/_emulator/users/42/messages`` and then
``curl 'localhost:8081/_emulator/chats/42?wait=5'``. ``python -m bot.emulator`` runs one standalone.
"""

from __future__ import annotations

from bot.emulator._emulator import DEFAULT_TOKEN, InlineButton, MessageRef, TelegramEmulator, buttons, serve
from bot.emulator._errors import (
    ButtonNotFoundError,
    ChatNotFoundError,
    EmulatorError,
    EmulatorTimeoutError,
    MessageNotFoundError,
)
from bot.emulator._flood import FloodLimits
from bot.emulator._state import ApiRequest, CallbackAnswer, ChatAction, ChatMessage, EmulatedUser, WebhookAttempt

__all__ = [
    "DEFAULT_TOKEN",
    "ApiRequest",
    "ButtonNotFoundError",
    "CallbackAnswer",
    "ChatAction",
    "ChatMessage",
    "ChatNotFoundError",
    "EmulatedUser",
    "EmulatorError",
    "EmulatorTimeoutError",
    "FloodLimits",
    "InlineButton",
    "MessageNotFoundError",
    "MessageRef",
    "TelegramEmulator",
    "WebhookAttempt",
    "buttons",
    "serve",
]

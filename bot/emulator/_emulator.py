"""`TelegramEmulator`: one emulated bot's Telegram, its HTTP server, and the user side that tests and people drive.

The user side creates real updates (messages, edits, button presses, blocks) in the users' chats and lets a test
await what the bot does in return; `serve` runs an emulator until it is cancelled.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, NamedTuple, Self

from aiohttp import web

from bot.emulator._api import BotApi, media_object
from bot.emulator._errors import (
    BotApiError,
    ButtonNotFoundError,
    ChatNotFoundError,
    EmulatorError,
    EmulatorTimeoutError,
    MessageNotFoundError,
)
from bot.emulator._flood import FloodControl, FloodLimits
from bot.emulator._markup import bot_command_entities
from bot.emulator._server import create_app
from bot.emulator._state import (
    ApiRequest,
    CallbackAnswer,
    Chat,
    ChatAction,
    ChatMessage,
    EmulatedUser,
    EmulatorState,
    PendingCallback,
    WebhookAttempt,
    WebhookConfig,
)
from bot.emulator._webhook import WebhookDelivery

__all__ = ["DEFAULT_TOKEN", "InlineButton", "MessageRef", "TelegramEmulator", "buttons", "serve"]

DEFAULT_TOKEN = "123456:TEST-TOKEN"
# Stand-ins for file contents: enough bytes for a bot to download and look at, not real media.
_PHOTO_BYTES = b"\xff\xd8\xff\xe0" + b"\x00" * 60 + b"\xff\xd9"
_VOICE_BYTES = b"OggS" + b"\x00" * 60
_STICKER_BYTES = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 48

MessageRef = ChatMessage | Mapping[str, Any] | int
"""A message given to the user side: a `ChatMessage`, a Bot API Message dict, or a message id in the user's chat."""


class InlineButton(NamedTuple):
    """One inline button: its label, and its callback data (the URL of a link button; None for other kinds)."""

    text: str
    data: str | None


def buttons(message: ChatMessage | Mapping[str, Any]) -> list[InlineButton]:
    """The inline buttons of a message in reading order, for showing them as numbered options."""
    source = message.message if isinstance(message, ChatMessage) else message
    markup = source.get("reply_markup") or {}
    found: list[InlineButton] = []
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            data = button.get("callback_data", button.get("url"))
            found.append(InlineButton(str(button.get("text", "")), str(data) if data is not None else None))
    return found


class TelegramEmulator:
    """A local Telegram Bot API for one bot token, with the users' side driven from Python or ``/_emulator/``.

    ``flood_limits`` turns on Telegram's flood control (None: off); ``strict_html`` also refuses a bare "&" or ">"
    in HTML texts, which Telegram itself lets through but which usually means a customer's text was not escaped.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "zabota_bot",
        bot_name: str = "Zabota",
        flood_limits: FloodLimits | None = None,
        webhook_retry_delay: float = 0.5,
        webhook_timeout: float = 10.0,
        strict_html: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError(f"a bot token looks like '123456:ABC-DEF', not {token!r}")
        self.token = token
        self.host = host
        self.port = port
        self.bot_id = int(bot_id)
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
        }
        self._clock = clock
        self._state = EmulatorState()
        self._api = BotApi(self._state, token=token, bot_user=self.bot_user, strict_html=strict_html)
        self._webhooks = WebhookDelivery(
            self._state, self._api, retry_delay=webhook_retry_delay, timeout=webhook_timeout
        )
        self._flood_limits: FloodLimits | None = None
        self.flood_limits = flood_limits
        self._runner: web.AppRunner | None = None
        self._next_group = 1

    # lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            raise EmulatorError("the emulator is already running")
        self._api.closing = False
        runner = web.AppRunner(create_app(self, self._api), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        await self._webhooks.start()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        # Waiting getUpdates calls answer at once instead of holding the shutdown for their whole timeout.
        self._api.closing = True
        self._state.changed.notify()
        await self._webhooks.stop()
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What ``TelegramAPIServer.from_base`` needs; the bound port once started."""
        if self._runner is None:
            raise EmulatorError("the emulator is not running: await start() first")
        return f"http://{self.host}:{self.port}"

    # configuration

    @property
    def flood_limits(self) -> FloodLimits | None:
        return self._flood_limits

    @flood_limits.setter
    def flood_limits(self, limits: FloodLimits | None) -> None:
        self._flood_limits = limits
        self._api.flood = FloodControl(limits, self._clock) if limits is not None else None

    @property
    def flood_rejections(self) -> int:
        """How many 429 answers the emulator has given."""
        return self._state.flood_rejections

    @property
    def webhook_retry_delay(self) -> float:
        return self._webhooks.retry_delay

    @webhook_retry_delay.setter
    def webhook_retry_delay(self, seconds: float) -> None:
        self._webhooks.retry_delay = seconds

    def set_webhook_targets(self, urls: Sequence[str], *, secret_token: str | None = None) -> None:
        """Delivers webhook updates to these URLs in turn, like a load balancer in front of several bot processes.

        With no webhook set yet, this also sets one (to the first URL). An empty list goes back to the URL the bot
        set itself.
        """
        state = self._state
        self._webhooks.targets = list(urls)
        if urls and state.webhook is None:
            state.webhook = WebhookConfig(url=urls[0], secret_token=secret_token, max_connections=40)
        elif state.webhook is not None and secret_token is not None:
            state.webhook.secret_token = secret_token
        state.changed.notify()

    def inject_error(
        self, method: str, error_code: int, description: str, *, retry_after: int | None = None, times: int = 1
    ) -> None:
        """The next ``times`` calls of ``method`` fail with this error (e.g. 500 "Internal Server Error")."""
        errors = self._state.injected_errors.setdefault(method.lower(), [])
        errors.extend(BotApiError(error_code, description, retry_after=retry_after) for _ in range(times))

    def clear_injected_errors(self) -> None:
        """Forget the errors ``inject_error`` queued that no call has met yet."""
        self._state.injected_errors.clear()

    def reset(self) -> None:
        """Forgets users, chats, updates and logs; the bot's settings (webhook, commands) and update ids stay."""
        self._state.clear_conversations()
        self.flood_limits = self._flood_limits
        self._state.changed.notify()

    # users and chats

    def register_user(self, user: EmulatedUser) -> None:
        """Makes ``user`` someone who has talked to the bot before, so the bot may write to them first."""
        self._state.remember_user(user)
        self._state.changed.notify()

    def add_group(
        self,
        title: str,
        members: Sequence[EmulatedUser] = (),
        *,
        chat_id: int | None = None,
        supergroup: bool = True,
        username: str | None = None,
    ) -> int:
        """A group the bot is a member of (an agents' group, say); returns its chat id."""
        if chat_id is None:
            chat_id = (-1001000000000 if supergroup else -1000000) - self._next_group
            self._next_group += 1
        if chat_id in self._state.chats:
            raise EmulatorError(f"chat {chat_id} already exists")
        chat = Chat(id=chat_id, type="supergroup" if supergroup else "group", title=title, username=username)
        for member in members:
            self._state.users[member.id] = member
            chat.member_ids.add(member.id)
        self._state.chats[chat_id] = chat
        self._state.changed.notify()
        return chat_id

    @property
    def users(self) -> dict[int, EmulatedUser]:
        return dict(self._state.users)

    # what users do

    async def send_message(
        self,
        user: EmulatedUser,
        text: str,
        *,
        reply_to_message_id: int | None = None,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """The user writes ``text`` (to the bot, or into the group ``chat_id``); returns the user's Message."""
        if not text.strip():
            raise EmulatorError("a Telegram user cannot send an empty message")
        fields: dict[str, Any] = {"text": text}
        if entities := bot_command_entities(text):
            fields["entities"] = entities
        return self._user_post(user, chat_id, fields, reply_to_message_id, sent_text=text)

    async def send_photo(
        self,
        user: EmulatedUser,
        caption: str | None = None,
        *,
        content: bytes = _PHOTO_BYTES,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        stored = self._state.store_file("photo", content, file_name=None, mime_type="image/jpeg")
        fields: dict[str, Any] = {"photo": media_object("photo", stored)}
        if caption:
            fields["caption"] = caption
        return self._user_post(user, chat_id, fields, None, sent_text=caption)

    async def send_document(
        self,
        user: EmulatedUser,
        file_name: str = "document.pdf",
        *,
        content: bytes = b"%PDF-1.4\n%emulated\n",
        mime_type: str | None = "application/pdf",
        caption: str | None = None,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        stored = self._state.store_file("document", content, file_name=file_name, mime_type=mime_type)
        fields: dict[str, Any] = {"document": media_object("document", stored)}
        if caption:
            fields["caption"] = caption
        return self._user_post(user, chat_id, fields, None, sent_text=caption)

    async def send_voice(
        self, user: EmulatedUser, *, duration: int = 3, content: bytes = _VOICE_BYTES, chat_id: int | None = None
    ) -> dict[str, Any]:
        stored = self._state.store_file("voice", content, file_name=None, mime_type="audio/ogg")
        fields = {"voice": media_object("voice", stored, duration=duration)}
        return self._user_post(user, chat_id, fields, None, sent_text=None)

    async def send_sticker(
        self, user: EmulatedUser, emoji: str = "👍", *, chat_id: int | None = None
    ) -> dict[str, Any]:
        stored = self._state.store_file("sticker", _STICKER_BYTES, file_name=None, mime_type="image/webp")
        fields = {"sticker": media_object("sticker", stored, emoji=emoji)}
        return self._user_post(user, chat_id, fields, None, sent_text=None)

    async def send_location(
        self, user: EmulatedUser, latitude: float, longitude: float, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        fields = {"location": {"latitude": latitude, "longitude": longitude}}
        return self._user_post(user, chat_id, fields, None, sent_text=None)

    async def send_contact(
        self, user: EmulatedUser, phone_number: str, *, shared_user: EmulatedUser | None = None
    ) -> dict[str, Any]:
        """The user shares a contact; by default their own, as a "share my phone number" button does."""
        owner = shared_user or user
        contact: dict[str, Any] = {"phone_number": phone_number, "first_name": owner.first_name, "user_id": owner.id}
        if owner.last_name:
            contact["last_name"] = owner.last_name
        return self._user_post(user, None, {"contact": contact}, None, sent_text=None)

    async def edit_message(
        self, user: EmulatedUser, message_id: int, new_text: str, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        """The user edits one of their own text messages; the bot gets an ``edited_message`` update."""
        chat = self._chat(chat_id if chat_id is not None else user.id)
        record = self._state.find_message(chat, message_id)
        if record is None:
            raise MessageNotFoundError(f"chat {chat.id} has no message {message_id}")
        if record.from_bot or record.message.get("from", {}).get("id") != user.id:
            raise EmulatorError(f"message {message_id} in chat {chat.id} was not written by user {user.id}")
        if "text" not in record.message:
            raise EmulatorError(f"message {message_id} has no text to edit")
        if not new_text.strip():
            raise EmulatorError("a Telegram user cannot edit a message to be empty")
        edited = {key: value for key, value in record.message.items() if key not in ("text", "entities")}
        edited["text"] = new_text
        if entities := bot_command_entities(new_text):
            edited["entities"] = entities
        edited["edit_date"] = int(time.time())
        record.sent_text = new_text
        self._state.replace_message(record, edited)
        self._state.new_update({"edited_message": copy.deepcopy(edited)})
        return edited

    async def press_button(self, user: EmulatedUser, message: MessageRef, button: str) -> dict[str, Any]:
        """The user taps an inline button, found by its text or else its callback data; returns the CallbackQuery."""
        chat, record = self._resolve(user, message)
        found = buttons(record)
        raw_buttons = [b for row in (record.message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
        match = next((b for b in raw_buttons if b.get("text") == button), None) or next(
            (b for b in raw_buttons if b.get("callback_data") == button), None
        )
        if match is None:
            listed = ", ".join(f"{b.text!r} ({b.data})" for b in found) or "none"
            raise ButtonNotFoundError(
                f"message {record.message_id} in chat {chat.id} has no inline button {button!r}; its buttons: {listed}"
            )
        if "callback_data" not in match:
            kind = next((key for key in match if key != "text"), "unknown")
            raise ButtonNotFoundError(
                f"button {match['text']!r} is a {kind} button ({match.get(kind)!r}); tapping it sends the bot nothing"
            )
        return self._callback(user, chat, record, str(match["callback_data"]))

    async def press_button_data(self, user: EmulatedUser, message: MessageRef, data: str) -> dict[str, Any]:
        """A tap carrying ``data`` whether or not the message has such a button: what a modified client can send."""
        chat, record = self._resolve(user, message)
        return self._callback(user, chat, record, data)

    def _callback(self, user: EmulatedUser, chat: Chat, record: ChatMessage, data: str) -> dict[str, Any]:
        query_id = self._state.new_callback_id()
        self._state.pending_callbacks[query_id] = PendingCallback(user.id, chat.id, record.message_id)
        query = {
            "id": query_id,
            "from": user.to_api(),
            "message": copy.deepcopy(record.message),
            "chat_instance": str(abs(chat.id) * 7919 % 10**19),
            "data": data,
        }
        self._state.new_update({"callback_query": query})
        return query

    async def block_bot(self, user: EmulatedUser) -> None:
        """The user blocks the bot: sending to them fails with 403 until they unblock it."""
        self._set_blocked(user, True)

    async def unblock_bot(self, user: EmulatedUser) -> None:
        self._set_blocked(user, False)

    async def deliver(self, update: Mapping[str, Any], times: int = 2) -> dict[str, Any]:
        """Delivers ``update`` ``times`` times, as Telegram does when it thinks a delivery failed.

        The copies reach the bot whatever its getUpdates offset; an update without ``update_id`` gets a new one.
        """
        if times < 1:
            raise EmulatorError("times must be at least 1")
        delivered = dict(update)
        if "update_id" not in delivered:
            delivered = {"update_id": self._state.take_update_id(), **delivered}
        self._state.redeliver(delivered, times)
        return delivered

    async def duplicate_last_update(self) -> dict[str, Any]:
        """Delivers the most recent update once more (the bot sees it twice in all)."""
        if not self._state.update_log:
            raise EmulatorError("there is no update to duplicate yet")
        return await self.deliver(self._state.update_log[-1], times=1)

    # what the bot did

    def chat_messages(self, chat_id: int, *, include_deleted: bool = False) -> list[ChatMessage]:
        """The chat's messages in order, both directions, each as it is now (with its edit history).

        A chat nobody has written in yet has no messages (and the bot cannot write there: "chat not found").
        """
        chat = self._state.chats.get(chat_id)
        return [m for m in chat.messages.values() if include_deleted or not m.deleted] if chat else []

    def bot_messages(self, chat_id: int, *, include_deleted: bool = False) -> list[ChatMessage]:
        return [m for m in self.chat_messages(chat_id, include_deleted=include_deleted) if m.from_bot]

    def current_keyboard(self, chat_id: int) -> dict[str, Any] | None:
        """The reply keyboard the user of this chat sees under the input field, if any."""
        chat = self._state.chats.get(chat_id)
        return chat.reply_keyboard if chat else None

    async def wait_for_bot_messages(self, chat_id: int, count: int = 1, timeout: float = 5.0) -> list[ChatMessage]:
        """The next ``count`` messages the bot sends into the chat, each returned once (like reading the chat).

        Messages the bot sent before the call and that no earlier call returned count too, so there is no race
        between a user's action and the wait. The chat need not exist yet.
        """
        if count < 1:
            return []

        def unread() -> list[ChatMessage]:
            # Looked up each time: the chat may appear (or be reset) while we wait.
            chat = self._state.chats.get(chat_id)
            return [m for m in chat.messages.values() if m.from_bot and m.message_id > chat.read_upto] if chat else []

        if not await self._state.changed.wait_for(lambda: len(unread()) >= count, timeout):
            got = unread()
            raise EmulatorTimeoutError(
                f"the bot sent {len(got)} of {count} awaited messages to chat {chat_id} within {timeout} s"
                f"{self._recent_failures()}"
            )
        batch = unread()[:count]
        self._state.chats[chat_id].read_upto = batch[-1].message_id
        return batch

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str | None = None) -> None:
        """Returns once ``predicate()`` holds; it is checked again after every change of the emulator's state."""
        if not await self._state.changed.wait_for(predicate, timeout):
            raise EmulatorTimeoutError(
                f"{what or 'the awaited condition'} did not come true within {timeout} s{self._recent_failures()}"
            )

    async def wait_for_callback_answer(self, callback_query_id: str, timeout: float = 5.0) -> CallbackAnswer:
        def answer() -> CallbackAnswer | None:
            return next((a for a in self._state.callback_answers if a.callback_query_id == callback_query_id), None)

        await self.wait_until(lambda: answer() is not None, timeout, f"an answer to callback query {callback_query_id}")
        found = answer()
        assert found is not None
        return found

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        return list(self._state.callback_answers)

    @property
    def requests(self) -> list[ApiRequest]:
        """Every Bot API call so far, in order, with the HTTP status the emulator answered."""
        return list(self._state.requests)

    def calls(self, method: str) -> list[ApiRequest]:
        return [r for r in self._state.requests if r.method.lower() == method.lower()]

    @property
    def chat_actions(self) -> list[ChatAction]:
        return list(self._state.chat_actions)

    @property
    def updates(self) -> list[dict[str, Any]]:
        """Every update created so far (redeliveries excluded), in order."""
        return list(self._state.update_log)

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by getUpdates or accepted by the webhook."""
        return [entry.update for entry in self._state.queue]

    @property
    def webhook_attempts(self) -> list[WebhookAttempt]:
        return list(self._state.webhook_attempts)

    @property
    def long_polls_waiting(self) -> int:
        """How many getUpdates calls are waiting for an update right now (1 while a bot is polling)."""
        return self._api.waiting_polls

    @property
    def webhook_url(self) -> str | None:
        return self._state.webhook.url if self._state.webhook else None

    # helpers

    def _chat(self, chat_id: int) -> Chat:
        chat = self._state.chats.get(chat_id)
        if chat is None:
            raise ChatNotFoundError(f"there is no chat {chat_id}: a private chat exists once its user has written")
        return chat

    def _resolve(self, user: EmulatedUser, message: MessageRef) -> tuple[Chat, ChatMessage]:
        if isinstance(message, ChatMessage):
            chat_id, message_id = message.chat_id, message.message_id
        elif isinstance(message, int):
            chat_id, message_id = user.id, message
        else:
            chat_id, message_id = int(message["chat"]["id"]), int(message["message_id"])
        chat = self._chat(chat_id)
        if user.id not in chat.member_ids:
            raise EmulatorError(f"user {user.id} is not in chat {chat_id}")
        record = self._state.find_message(chat, message_id)
        if record is None:
            raise MessageNotFoundError(f"chat {chat_id} has no message {message_id} (or it was deleted)")
        return chat, record

    def _user_chat(self, user: EmulatedUser, chat_id: int | None) -> Chat:
        if chat_id is None or chat_id == user.id:
            chat = self._state.remember_user(user)
            if chat.blocked:
                raise EmulatorError(f"user {user.id} has blocked the bot; unblock_bot() first")
            return chat
        chat = self._chat(chat_id)
        if not chat.is_group:
            raise EmulatorError(f"chat {chat_id} is another user's private chat")
        self._state.users[user.id] = user
        chat.member_ids.add(user.id)
        return chat

    def _user_post(
        self,
        user: EmulatedUser,
        chat_id: int | None,
        fields: dict[str, Any],
        reply_to_message_id: int | None,
        *,
        sent_text: str | None,
    ) -> dict[str, Any]:
        chat = self._user_chat(user, chat_id)
        content: dict[str, Any] = {"from": user.to_api()}
        if reply_to_message_id is not None:
            target = self._state.find_message(chat, reply_to_message_id)
            if target is None:
                raise MessageNotFoundError(f"chat {chat.id} has no message {reply_to_message_id} to reply to")
            content["reply_to_message"] = {k: v for k, v in target.message.items() if k != "reply_to_message"}
        content.update(fields)
        record = self._state.add_message(chat, content, from_bot=False, sent_text=sent_text)
        if chat.reply_keyboard and chat.reply_keyboard.get("one_time_keyboard") and "text" in fields:
            chat.reply_keyboard = None
        self._state.new_update({"message": copy.deepcopy(record.message)})
        return record.message

    def _set_blocked(self, user: EmulatedUser, blocked: bool) -> None:
        chat = self._state.remember_user(user)
        if chat.blocked == blocked:
            return
        chat.blocked = blocked
        member = {"status": "member", "user": self.bot_user}
        kicked = {"status": "kicked", "user": self.bot_user, "until_date": 0}
        self._state.new_update(
            {
                "my_chat_member": {
                    "chat": chat.to_api(),
                    "from": user.to_api(),
                    "date": int(time.time()),
                    "old_chat_member": member if blocked else kicked,
                    "new_chat_member": kicked if blocked else member,
                }
            }
        )

    def _recent_failures(self) -> str:
        failures = [r for r in self._state.requests[-20:] if r.status != 200]
        if not failures:
            return ""
        listed = "; ".join(f"{r.method} -> {r.status} {r.description}" for r in failures[-5:])
        return f" (recent failed Bot API calls: {listed})"


async def serve(host: str = "127.0.0.1", port: int = 8081, token: str = DEFAULT_TOKEN) -> None:
    """Runs an emulator until the task running this is cancelled."""
    async with TelegramEmulator(token, host=host, port=port):
        await asyncio.Event().wait()

"""What the emulated Telegram knows: users, chats and their messages, files, the update queue and the logs.

Plain data and bookkeeping with no HTTP in it. Every change is announced through `ChangeSignal`, which is what
long polling, webhook delivery and the test helpers wait on instead of polling in a loop.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.emulator._errors import BotApiError

__all__ = [
    "ApiRequest",
    "CallbackAnswer",
    "ChangeSignal",
    "Chat",
    "ChatAction",
    "ChatMessage",
    "EmulatedUser",
    "EmulatorState",
    "PendingCallback",
    "QueuedUpdate",
    "StoredFile",
    "WebhookAttempt",
    "WebhookConfig",
]

# What Telegram sends when a bot has never said which updates it wants.
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_FILE_ID_PREFIXES = {"photo": "AgAC", "document": "BQAC", "voice": "AwAC", "sticker": "CAAC"}
_FILE_FOLDERS = {"photo": "photos", "document": "documents", "voice": "voice", "sticker": "stickers"}


class ChangeSignal:
    """Wakes every waiter whenever the state changes; waiters re-check their own condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()
        for listener in list(self._listeners):
            listener()

    def add_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """True once ``predicate()`` holds, False if ``timeout`` seconds pass first."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    # Taken before the check: a change between the check and the wait still wakes us.
                    event = self._event
                    if predicate():
                        return True
                    await event.wait()
        except TimeoutError:
            return predicate()


@dataclass(frozen=True)
class EmulatedUser:
    """A Telegram user played by a test or a person; their private chat with the bot has the same id."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False

    def to_api(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user


@dataclass
class ChatMessage:
    """One message of a chat, either direction, as it is now; earlier versions are kept in ``history``.

    ``message`` is the Bot API Message object. ``reply_markup`` is the markup as the bot sent it, reply keyboards
    included (a Message object only ever shows an inline keyboard).
    """

    message: dict[str, Any]
    from_bot: bool
    reply_markup: dict[str, Any] | None = None
    sent_text: str | None = None
    parse_mode: str | None = None
    disable_notification: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])

    @property
    def chat_id(self) -> int:
        return int(self.message["chat"]["id"])

    @property
    def text(self) -> str | None:
        """The text, or the caption of a media message."""
        value = self.message.get("text", self.message.get("caption"))
        return str(value) if value is not None else None

    @property
    def entities(self) -> list[dict[str, Any]]:
        return list(self.message.get("entities", self.message.get("caption_entities", [])))

    @property
    def edited(self) -> bool:
        return bool(self.history)

    def to_json(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "from_bot": self.from_bot,
            "reply_markup": self.reply_markup,
            "sent_text": self.sent_text,
            "parse_mode": self.parse_mode,
            "disable_notification": self.disable_notification,
            "history": self.history,
            "deleted": self.deleted,
        }


@dataclass(frozen=True)
class ApiRequest:
    """One Bot API call as the emulator answered it."""

    method: str
    params: dict[str, Any]
    time: float
    status: int
    result: Any = None
    description: str | None = None
    via_webhook_reply: bool = False


@dataclass(frozen=True)
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int
    time: float


@dataclass(frozen=True)
class ChatAction:
    chat_id: int
    action: str
    time: float


@dataclass(frozen=True)
class WebhookAttempt:
    """One POST of an update to a webhook: ``status`` is None when the connection itself failed."""

    update_id: int
    url: str
    status: int | None
    error: str | None
    time: float


@dataclass(frozen=True)
class PendingCallback:
    user_id: int
    chat_id: int
    message_id: int


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str
    file_path: str
    content: bytes | None
    file_name: str | None
    mime_type: str | None
    size: int

    def to_api(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
            "file_path": self.file_path,
        }


@dataclass
class Chat:
    id: int
    type: str
    user: EmulatedUser | None = None
    title: str | None = None
    username: str | None = None
    member_ids: set[int] = field(default_factory=set)
    messages: dict[int, ChatMessage] = field(default_factory=dict)
    next_message_id: int = 1
    blocked: bool = False
    reply_keyboard: dict[str, Any] | None = None
    read_upto: int = 0

    def to_api(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.user is not None:
            chat["first_name"] = self.user.first_name
            if self.user.last_name:
                chat["last_name"] = self.user.last_name
            if self.user.username:
                chat["username"] = self.user.username
        if self.title is not None:
            chat["title"] = self.title
        if self.username is not None and self.user is None:
            chat["username"] = self.username
        return chat

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")


@dataclass(eq=False)
class QueuedUpdate:
    """An update waiting to be fetched or delivered; ``forced`` ones ignore the getUpdates offset (duplicates)."""

    update: dict[str, Any]
    chat_key: int | None
    forced: bool = False
    in_flight: bool = False

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])


@dataclass
class WebhookConfig:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


def update_type(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


def update_chat_key(update: dict[str, Any]) -> int | None:
    """The chat an update belongs to, so that one chat's updates go out one at a time and in order."""
    body = update.get(update_type(update))
    if not isinstance(body, dict):
        return None
    message = body.get("message") if "message" in body else body
    if isinstance(message, dict) and isinstance(message.get("chat"), dict):
        return int(message["chat"]["id"])
    if isinstance(body.get("chat"), dict):
        return int(body["chat"]["id"])
    if isinstance(body.get("from"), dict):
        return int(body["from"]["id"])
    return None


class EmulatorState:
    """Everything one emulated bot's Telegram remembers. Methods keep it consistent and announce changes."""

    def __init__(self) -> None:
        self.changed = ChangeSignal()
        # Like Telegram, update ids do not start again from 1: a bot that remembers the updates it handled (in a
        # Redis that outlives the emulator, say) must not take a new update for one it saw in an earlier run.
        self.next_update_id = 100_000_000 + secrets.randbelow(1_000_000_000)
        self._next_file = 1
        self._next_callback = 1
        self.webhook: WebhookConfig | None = None
        self.allowed_updates: list[str] | None = None
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.descriptions: dict[tuple[str, str], str] = {}
        self.injected_errors: dict[str, list[BotApiError]] = {}
        self.clear_conversations()

    def clear_conversations(self) -> None:
        """Forgets users, chats, files, queued updates and logs; the bot's own settings and update ids stay."""
        self.users: dict[int, EmulatedUser] = {}
        self.chats: dict[int, Chat] = {}
        self.files: dict[str, StoredFile] = {}
        self.queue: list[QueuedUpdate] = []
        self.update_log: list[dict[str, Any]] = []
        self.requests: list[ApiRequest] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.pending_callbacks: dict[str, PendingCallback] = {}
        self.chat_actions: list[ChatAction] = []
        self.webhook_attempts: list[WebhookAttempt] = []
        self.flood_rejections = 0

    # users and chats

    def remember_user(self, user: EmulatedUser) -> Chat:
        """The user's private chat, created the first time the user is seen (when they first write)."""
        self.users[user.id] = user
        chat = self.chats.get(user.id)
        if chat is None:
            chat = Chat(id=user.id, type="private", user=user, member_ids={user.id})
            self.chats[user.id] = chat
        else:
            chat.user = user
        return chat

    def find_chat(self, chat_id: int | str) -> Chat | None:
        if isinstance(chat_id, str):
            name = chat_id.removeprefix("@").lower()
            return next(
                (c for c in self.chats.values() if c.is_group and c.username and c.username.lower() == name), None
            )
        return self.chats.get(chat_id)

    def add_message(
        self,
        chat: Chat,
        fields: dict[str, Any],
        *,
        from_bot: bool,
        reply_markup: dict[str, Any] | None = None,
        sent_text: str | None = None,
        parse_mode: str | None = None,
        disable_notification: bool = False,
    ) -> ChatMessage:
        message = {"message_id": chat.next_message_id, "date": int(time.time()), "chat": chat.to_api(), **fields}
        chat.next_message_id += 1
        record = ChatMessage(
            message=message,
            from_bot=from_bot,
            reply_markup=reply_markup,
            sent_text=sent_text,
            parse_mode=parse_mode,
            disable_notification=disable_notification,
        )
        chat.messages[record.message_id] = record
        self.changed.notify()
        return record

    def find_message(self, chat: Chat, message_id: int) -> ChatMessage | None:
        record = chat.messages.get(message_id)
        return None if record is None or record.deleted else record

    def replace_message(self, record: ChatMessage, message: dict[str, Any]) -> None:
        record.history.append(record.message)
        record.message = message
        self.changed.notify()

    # files

    def store_file(
        self, kind: str, content: bytes | None, *, file_name: str | None, mime_type: str | None, size: int | None = None
    ) -> StoredFile:
        number = self._next_file
        self._next_file += 1
        extension = (file_name or "").rpartition(".")[2] if file_name and "." in file_name else _default_extension(kind)
        stored = StoredFile(
            file_id=f"{_FILE_ID_PREFIXES.get(kind, 'BQAC')}AgIAAxkBAAE{number:010d}",
            file_unique_id=f"AQAD{number:08d}",
            kind=kind,
            file_path=f"{_FILE_FOLDERS.get(kind, 'documents')}/file_{number}.{extension}",
            content=content,
            file_name=file_name,
            mime_type=mime_type,
            size=size if size is not None else len(content or b""),
        )
        self.files[stored.file_id] = stored
        return stored

    # updates

    def new_update(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Queues a new update (``{"message": ...}`` and so on); None when the bot does not want that kind."""
        kind = next(iter(body))
        wanted = self.allowed_updates
        if (wanted is None and kind in _DEFAULT_EXCLUDED_UPDATES) or (wanted is not None and kind not in wanted):
            return None
        update = {"update_id": self.take_update_id(), **body}
        self.update_log.append(update)
        self.queue.append(QueuedUpdate(update, update_chat_key(update)))
        self.changed.notify()
        return update

    def take_update_id(self) -> int:
        update_id = self.next_update_id
        self.next_update_id += 1
        return update_id

    def redeliver(self, update: dict[str, Any], times: int) -> None:
        for _ in range(times):
            self.queue.append(QueuedUpdate(copy.deepcopy(update), update_chat_key(update), forced=True))
        self.changed.notify()

    def confirm(self, offset: int) -> None:
        """getUpdates' offset: updates below it were handled and are forgotten; a negative one keeps the last few."""
        if offset < 0:
            regular = [entry for entry in self.queue if not entry.forced]
            keep = {id(entry) for entry in regular[offset:]}
            self.queue = [entry for entry in self.queue if entry.forced or id(entry) in keep]
        elif offset > 0:
            self.queue = [entry for entry in self.queue if entry.forced or entry.update_id >= offset]

    def take_for_polling(self, limit: int) -> list[dict[str, Any]]:
        # Sorted by id so that a redelivered (older) update never moves the bot's offset backwards past newer ones.
        batch = sorted((e for e in self.queue if not e.in_flight), key=lambda e: e.update_id)[:limit]
        handed_out = {id(entry) for entry in batch if entry.forced}
        if handed_out:
            self.queue = [entry for entry in self.queue if id(entry) not in handed_out]
        return [entry.update for entry in batch]

    def remove_queued(self, entry: QueuedUpdate) -> None:
        if any(e is entry for e in self.queue):
            self.queue = [e for e in self.queue if e is not entry]
            self.changed.notify()

    def drop_pending_updates(self) -> None:
        self.queue = [entry for entry in self.queue if entry.in_flight]

    def new_callback_id(self) -> str:
        number = self._next_callback
        self._next_callback += 1
        return str(4_000_000_000_000_000_000 + number)


def _default_extension(kind: str) -> str:
    return {"photo": "jpg", "voice": "oga", "sticker": "webp"}.get(kind, "bin")

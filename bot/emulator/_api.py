"""The Bot API methods: each takes one request's parameters and returns Telegram's result or raises its error.

`BotApi.handle` is the single entry point (HTTP requests and webhook replies both come through it): it checks the
token and the method, runs the method, logs the call and shapes the answer exactly as Telegram does.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.emulator._errors import BotApiError, bad_request, forbidden
from bot.emulator._flood import FloodControl
from bot.emulator._markup import Entity, ParseError, UnsupportedParseMode, parse_formatted, trim_formatted
from bot.emulator._params import Params, UploadedFile
from bot.emulator._state import (
    ApiRequest,
    CallbackAnswer,
    Chat,
    ChatAction,
    ChatMessage,
    EmulatorState,
    StoredFile,
    WebhookConfig,
)

__all__ = ["BotApi", "media_object"]

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_ANSWER_LIMIT = 200
_CHAT_ACTIONS = frozenset(
    [
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    ]
)
_INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
# Fields of a message that belong to the original, not to its copy.
_NOT_COPIED = frozenset(
    [
        "message_id",
        "date",
        "chat",
        "from",
        "forward_origin",
        "reply_to_message",
        "edit_date",
        "reply_markup",
        "message_thread_id",
        "is_topic_message",
        "has_protected_content",
        "sender_chat",
        "via_bot",
        "author_signature",
    ]
)
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_MEDIA_KINDS = ("photo", "document", "voice", "sticker", "video", "audio", "animation")
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
_POLLING_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"

Handler = Callable[[Params], Awaitable[Any]]


@dataclass(frozen=True)
class _Described:
    """A result that Telegram sends with a "description" next to it ("Webhook was set")."""

    result: Any
    description: str


def media_object(kind: str, stored: StoredFile, *, duration: int | None = None, emoji: str | None = None) -> Any:
    """The Bot API object of a file as it appears in a Message (``photo`` is a list of sizes)."""
    base: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
    if stored.size:
        base["file_size"] = stored.size
    if kind == "photo":
        return [{**base, "width": 1280, "height": 960}]
    if kind == "voice":
        return {**base, "duration": duration or 1, "mime_type": stored.mime_type or "audio/ogg"}
    if kind == "sticker":
        sticker = {**base, "type": "regular", "width": 512, "height": 512, "is_animated": False, "is_video": False}
        if emoji:
            sticker["emoji"] = emoji
        return sticker
    if stored.file_name:
        base["file_name"] = stored.file_name
    if stored.mime_type:
        base["mime_type"] = stored.mime_type
    return base


class BotApi:
    """The methods of one bot's Bot API over an `EmulatorState`."""

    def __init__(
        self,
        state: EmulatorState,
        *,
        token: str,
        bot_user: dict[str, Any],
        strict_html: bool = False,
        flood: FloodControl | None = None,
    ) -> None:
        self.state = state
        self.token = token
        self.bot_user = bot_user
        self.strict_html = strict_html
        self.flood = flood
        self.closing = False
        self.waiting_polls = 0
        self._poll_generation = 0
        methods: dict[str, Handler] = {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._media_sender("photo"),
            "sendDocument": self._media_sender("document"),
            "sendVoice": self._media_sender("voice"),
            "sendSticker": self._media_sender("sticker"),
            "sendLocation": self._send_location,
            "sendContact": self._send_contact,
            "sendChatAction": self._send_chat_action,
            "copyMessage": self._copy_message,
            "forwardMessage": self._forward_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "setMyDescription": self._description_setter("description"),
            "getMyDescription": self._description_getter("description"),
            "setMyShortDescription": self._description_setter("short_description"),
            "getMyShortDescription": self._description_getter("short_description"),
            "setMyName": self._description_setter("name"),
            "getMyName": self._description_getter("name"),
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getFile": self._get_file,
            "setMessageReaction": self._set_message_reaction,
            "pinChatMessage": self._pin_chat_message,
            "unpinChatMessage": self._unpin_chat_message,
            "unpinAllChatMessages": self._unpin_chat_message,
        }
        self._methods = {name.lower(): (name, handler) for name, handler in methods.items()}

    async def handle(
        self, token: str, method: str, params: Params, *, via_webhook_reply: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """HTTP status and JSON body of Telegram's answer to one call; every call is logged."""
        name, handler = self._methods.get(method.lower(), (method, None))
        result: Any = None
        try:
            if token != self.token:
                raise BotApiError(401, "Unauthorized")
            if handler is None:
                raise BotApiError(404, "Not Found")
            injected = self.state.injected_errors.get(name.lower())
            if injected:
                raise injected.pop(0)
            result = await handler(params)
        except BotApiError as error:
            status, body = error.error_code, error.to_json()
            if error.error_code == 429:
                self.state.flood_rejections += 1
        else:
            status, body = 200, {"ok": True}
            if isinstance(result, _Described):
                body["result"], body["description"] = result.result, result.description
                result = result.result
            else:
                body["result"] = result
        self.state.requests.append(
            ApiRequest(
                method=name,
                params=params.for_log(),
                time=time.time(),
                status=status,
                result=result if status == 200 else None,
                description=body.get("description"),
                via_webhook_reply=via_webhook_reply,
            )
        )
        self.state.changed.notify()
        return status, body

    # helpers shared by the methods

    def _target_chat(self, params: Params, name: str = "chat_id") -> Chat:
        chat = self.state.find_chat(params.chat_id(name))
        if chat is None:
            raise bad_request("chat not found")
        if chat.blocked:
            raise forbidden("bot was blocked by the user")
        return chat

    def _existing_chat(self, params: Params, name: str = "chat_id") -> Chat:
        chat = self.state.find_chat(params.chat_id(name))
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _lookup_user(self, user_id: int) -> dict[str, Any] | None:
        user = self.state.users.get(user_id)
        return user.to_api() if user else None

    def _formatted(
        self, params: Params, text_name: str, entities_name: str, *, limit: int, too_long: str, empty: str | None
    ) -> tuple[str, list[Entity]] | None:
        raw = params.text(text_name)
        if raw is None:
            if empty:
                raise bad_request(empty)
            return None
        explicit = params.json_value(entities_name, error="can't parse entities JSON object")
        if explicit is not None:
            if not isinstance(explicit, list) or not all(_is_entity(e) for e in explicit):
                raise bad_request("can't parse entities JSON object")
            text, entities = trim_formatted(raw, explicit)
        else:
            try:
                text, entities = parse_formatted(
                    raw, params.text("parse_mode"), strict_html=self.strict_html, lookup_user=self._lookup_user
                )
            except ParseError as error:
                raise bad_request(f"can't parse entities: {error}") from error
            except UnsupportedParseMode as error:
                raise bad_request("unsupported parse_mode") from error
        if empty and not text:
            raise bad_request(empty)
        if len(text) > limit:
            raise bad_request(too_long)
        return text, entities

    def _reply_markup(self, params: Params, *, inline_only: bool = False) -> dict[str, Any] | None:
        markup = params.json_value("reply_markup", error="can't parse reply keyboard markup JSON object")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            _check_inline_keyboard(markup["inline_keyboard"])
            return markup
        if inline_only:
            raise bad_request("inline keyboard expected")
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise bad_request('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
            for row in rows:
                for button in row:
                    text = button.get("text") if isinstance(button, dict) else button
                    if not isinstance(text, str) or not text:
                        raise bad_request("can't parse keyboard button: Text must be non-empty")
            return markup
        if markup.get("remove_keyboard") is True or "force_reply" in markup:
            return markup
        raise bad_request("can't parse reply keyboard markup JSON object")

    def _reply_target(self, params: Params, chat: Chat) -> dict[str, Any] | None:
        reply_parameters = params.json_value("reply_parameters", error="can't parse reply parameters JSON object")
        if isinstance(reply_parameters, dict):
            message_id = reply_parameters.get("message_id")
            allow_without = bool(reply_parameters.get("allow_sending_without_reply"))
            if reply_parameters.get("chat_id") not in (None, chat.id):
                other = self.state.find_chat(reply_parameters["chat_id"])
                if other is None:
                    raise bad_request("chat not found")
                chat = other
        else:
            message_id = params.integer("reply_to_message_id")
            allow_without = params.flag("allow_sending_without_reply")
        if message_id is None:
            return None
        target = self.state.find_message(chat, int(message_id))
        if target is None:
            if allow_without:
                return None
            raise bad_request("message to be replied not found")
        return {key: value for key, value in target.message.items() if key != "reply_to_message"}

    def _admit(self, chat: Chat) -> None:
        if self.flood is None:
            return
        retry_after = self.flood.admit(chat.id, is_group=chat.is_group)
        if retry_after is not None:
            raise BotApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)

    def _post(
        self,
        params: Params,
        chat: Chat,
        content: dict[str, Any],
        *,
        sent_text: str | None,
        reply_markup: bool = True,
    ) -> ChatMessage:
        """Validates what every sending method shares, counts it against flood control and stores the message."""
        markup = self._reply_markup(params) if reply_markup else None
        reply = self._reply_target(params, chat)
        self._admit(chat)
        fields: dict[str, Any] = {"from": self.bot_user}
        thread_id = params.integer("message_thread_id")
        if thread_id and chat.is_group:
            fields.update(message_thread_id=thread_id, is_topic_message=True)
        if reply is not None:
            fields["reply_to_message"] = reply
        fields.update(content)
        if params.flag("protect_content"):
            fields["has_protected_content"] = True
        if markup is not None and "inline_keyboard" in markup:
            fields["reply_markup"] = markup
        if markup is not None and "keyboard" in markup:
            chat.reply_keyboard = markup
        elif markup is not None and markup.get("remove_keyboard"):
            chat.reply_keyboard = None
        return self.state.add_message(
            chat,
            fields,
            from_bot=True,
            reply_markup=markup,
            sent_text=sent_text,
            parse_mode=params.text("parse_mode"),
            disable_notification=params.flag("disable_notification"),
        )

    def _input_file(self, params: Params, name: str, kind: str) -> StoredFile:
        value = params.file(name)
        if value is None:
            raise bad_request(f"there is no {name} in the request")
        if isinstance(value, UploadedFile):
            return self.state.store_file(kind, value.content, file_name=value.filename, mime_type=value.content_type)
        if value.startswith(("http://", "https://")):
            # Telegram downloads the URL; the emulator only remembers that there is such a file.
            name_in_url = value.rstrip("/").rpartition("/")[2] or None
            return self.state.store_file(kind, None, file_name=name_in_url, mime_type=None, size=0)
        stored = self.state.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return stored

    def _message_to_edit(self, params: Params) -> tuple[Chat, ChatMessage]:
        if not params.has("chat_id") and params.has("inline_message_id"):
            raise bad_request("message to edit not found")
        chat = self._existing_chat(params)
        if not params.has("message_id"):
            raise bad_request("message identifier is not specified")
        record = self.state.find_message(chat, params.required_integer("message_id"))
        if record is None:
            raise bad_request("message to edit not found")
        if not record.from_bot:
            raise bad_request("message can't be edited")
        if chat.blocked:
            raise forbidden("bot was blocked by the user")
        return chat, record

    def _apply_edit(self, record: ChatMessage, changes: dict[str, Any], markup: dict[str, Any] | None) -> Any:
        old = record.message
        new = {key: value for key, value in old.items() if key not in changes and key != "edit_date"}
        new.update({key: value for key, value in changes.items() if value})
        if new == {key: value for key, value in old.items() if key != "edit_date"}:
            raise bad_request(
                "message is not modified: specified new message content and reply markup are exactly the same as "
                "a current content and reply markup of the message"
            )
        new["edit_date"] = int(time.time())
        record.reply_markup = markup
        self.state.replace_message(record, new)
        return new

    # the methods

    async def _true(self, params: Params) -> bool:
        return True

    async def _get_me(self, params: Params) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
        state = self.state
        if state.webhook is not None:
            raise BotApiError(409, _WEBHOOK_CONFLICT)
        offset = params.integer("offset") or 0
        limit = min(max(params.integer("limit") or 100, 1), 100)
        timeout = max(params.integer("timeout") or 0, 0)
        allowed = params.json_value("allowed_updates", error="can't parse allowed_updates JSON object")
        if allowed is not None:
            state.allowed_updates = [str(kind) for kind in allowed] if allowed else None
        state.confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        if timeout:
            self.waiting_polls += 1
            state.changed.notify()  # an older getUpdates still waiting learns it was superseded
            try:
                await state.changed.wait_for(
                    lambda: (
                        self.closing
                        or generation != self._poll_generation
                        or state.webhook is not None
                        or any(not entry.in_flight for entry in state.queue)
                    ),
                    timeout,
                )
            finally:
                self.waiting_polls -= 1
        else:
            state.changed.notify()
        if generation != self._poll_generation:
            raise BotApiError(409, _POLLING_CONFLICT)
        if state.webhook is not None:
            raise BotApiError(409, _WEBHOOK_CONFLICT)
        return state.take_for_polling(limit)

    async def _set_webhook(self, params: Params) -> _Described:
        state = self.state
        url = params.text("url") or ""
        if not url:
            return await self._delete_webhook(params)
        if not url.startswith(("https://", "http://")):
            # Telegram insists on HTTPS; a local emulator has to accept plain HTTP too.
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.text("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        max_connections = min(max(params.integer("max_connections") or 40, 1), 100)
        allowed = params.json_value("allowed_updates", error="can't parse allowed_updates JSON object")
        if allowed is not None:
            state.allowed_updates = [str(kind) for kind in allowed] if allowed else None
        if params.flag("drop_pending_updates"):
            state.drop_pending_updates()
        current = state.webhook
        unchanged = current is not None and (current.url, current.secret_token, current.max_connections) == (
            url,
            secret,
            max_connections,
        )
        if not unchanged:
            state.webhook = WebhookConfig(url=url, secret_token=secret, max_connections=max_connections)
        state.changed.notify()
        return _Described(True, "Webhook is already set" if unchanged else "Webhook was set")

    async def _delete_webhook(self, params: Params) -> _Described:
        state = self.state
        existed = state.webhook is not None
        state.webhook = None
        if params.flag("drop_pending_updates"):
            state.drop_pending_updates()
        state.changed.notify()
        return _Described(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    async def _get_webhook_info(self, params: Params) -> dict[str, Any]:
        state = self.state
        webhook = state.webhook
        info: dict[str, Any] = {
            "url": webhook.url if webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(state.queue),
        }
        if webhook is not None:
            info["max_connections"] = webhook.max_connections
            info["ip_address"] = "127.0.0.1"
            if state.allowed_updates is not None:
                info["allowed_updates"] = state.allowed_updates
            if webhook.last_error_date is not None:
                info["last_error_date"] = webhook.last_error_date
                info["last_error_message"] = webhook.last_error_message
        return info

    async def _send_message(self, params: Params) -> dict[str, Any]:
        chat = self._target_chat(params)
        formatted = self._formatted(
            params, "text", "entities", limit=TEXT_LIMIT, too_long="message is too long", empty="message text is empty"
        )
        assert formatted is not None
        text, entities = formatted
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        link_preview = params.json_value("link_preview_options", error="can't parse link preview options JSON object")
        if isinstance(link_preview, dict) and link_preview:
            content["link_preview_options"] = link_preview
        return self._post(params, chat, content, sent_text=params.text("text")).message

    def _media_sender(self, kind: str) -> Handler:
        async def send(params: Params) -> dict[str, Any]:
            chat = self._target_chat(params)
            stored = self._input_file(params, kind, kind)
            content: dict[str, Any] = {
                kind: media_object(kind, stored, duration=params.integer("duration"), emoji=params.text("emoji"))
            }
            if kind != "sticker":
                content.update(self._caption(params))
            return self._post(params, chat, content, sent_text=params.text("caption")).message

        return send

    def _caption(self, params: Params) -> dict[str, Any]:
        formatted = self._formatted(
            params,
            "caption",
            "caption_entities",
            limit=CAPTION_LIMIT,
            too_long="message caption is too long",
            empty=None,
        )
        if not formatted or not formatted[0]:
            return {}
        caption, entities = formatted
        return {"caption": caption, "caption_entities": entities} if entities else {"caption": caption}

    async def _send_location(self, params: Params) -> dict[str, Any]:
        chat = self._target_chat(params)
        latitude = params.number("latitude", required=True)
        longitude = params.number("longitude", required=True)
        assert latitude is not None and longitude is not None
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise bad_request("wrong location specified")
        content = {"location": {"latitude": latitude, "longitude": longitude}}
        return self._post(params, chat, content, sent_text=None).message

    async def _send_contact(self, params: Params) -> dict[str, Any]:
        chat = self._target_chat(params)
        contact: dict[str, Any] = {
            "phone_number": params.text("phone_number", required=True),
            "first_name": params.text("first_name", required=True),
        }
        if params.has("last_name"):
            contact["last_name"] = params.text("last_name")
        return self._post(params, chat, {"contact": contact}, sent_text=None).message

    async def _send_chat_action(self, params: Params) -> bool:
        chat = self._target_chat(params)
        action = params.text("action", required=True)
        if action not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.state.chat_actions.append(ChatAction(chat.id, action, time.time()))
        return True

    def _source_message(self, params: Params, missing: str) -> ChatMessage:
        source_chat = self._existing_chat(params, "from_chat_id")
        record = self.state.find_message(source_chat, params.required_integer("message_id"))
        if record is None:
            raise bad_request(missing)
        return record

    async def _copy_message(self, params: Params) -> dict[str, Any]:
        chat = self._target_chat(params)
        source = self._source_message(params, "message to copy not found")
        content = {key: value for key, value in source.message.items() if key not in _NOT_COPIED}
        if params.has("caption") and any(kind in content for kind in _MEDIA_KINDS):
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(self._caption(params))
        record = self._post(params, chat, content, sent_text=source.sent_text or source.text)
        return {"message_id": record.message_id}

    async def _forward_message(self, params: Params) -> dict[str, Any]:
        chat = self._target_chat(params)
        source = self._source_message(params, "message to forward not found")
        content = {key: value for key, value in source.message.items() if key not in _NOT_COPIED}
        original = source.message
        content["forward_origin"] = original.get("forward_origin") or {
            "type": "user",
            "sender_user": original.get("from", self.bot_user),
            "date": original["date"],
        }
        return self._post(params, chat, content, sent_text=source.text, reply_markup=False).message

    async def _edit_message_text(self, params: Params) -> Any:
        _, record = self._message_to_edit(params)
        formatted = self._formatted(
            params, "text", "entities", limit=TEXT_LIMIT, too_long="message is too long", empty="message text is empty"
        )
        assert formatted is not None
        if "text" not in record.message:
            raise bad_request("there is no text in the message to edit")
        markup = self._reply_markup(params, inline_only=True)
        text, entities = formatted
        link_preview = params.json_value("link_preview_options", error="can't parse link preview options JSON object")
        changes: dict[str, Any] = {"text": text, "entities": entities, "reply_markup": markup}
        if isinstance(link_preview, dict) and link_preview:
            changes["link_preview_options"] = link_preview
        edited = self._apply_edit(record, changes, markup)
        record.sent_text, record.parse_mode = params.text("text"), params.text("parse_mode")
        return edited

    async def _edit_message_caption(self, params: Params) -> Any:
        _, record = self._message_to_edit(params)
        if "text" in record.message:
            raise bad_request("there is no caption in the message to edit")
        markup = self._reply_markup(params, inline_only=True)
        caption = self._caption(params)
        changes = {
            "caption": caption.get("caption"),
            "caption_entities": caption.get("caption_entities"),
            "reply_markup": markup,
        }
        return self._apply_edit(record, changes, markup)

    async def _edit_message_reply_markup(self, params: Params) -> Any:
        _, record = self._message_to_edit(params)
        markup = self._reply_markup(params, inline_only=True)
        return self._apply_edit(record, {"reply_markup": markup}, markup)

    async def _delete_message(self, params: Params) -> bool:
        chat = self._existing_chat(params)
        record = self.state.find_message(chat, params.required_integer("message_id"))
        if record is None:
            raise bad_request("message to delete not found")
        record.deleted = True
        self.state.changed.notify()
        return True

    async def _delete_messages(self, params: Params) -> bool:
        chat = self._existing_chat(params)
        message_ids = params.json_value("message_ids", error="can't parse message_ids JSON object")
        if not isinstance(message_ids, list) or not message_ids:
            raise bad_request("message_ids is empty")
        for message_id in message_ids:
            record = self.state.find_message(chat, int(message_id))
            if record is not None:
                record.deleted = True
        self.state.changed.notify()
        return True

    async def _answer_callback_query(self, params: Params) -> bool:
        query_id = params.text("callback_query_id", required=True)
        assert query_id is not None
        if query_id not in self.state.pending_callbacks:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        text = params.text("text")
        if text is not None and len(text) > CALLBACK_ANSWER_LIMIT:
            raise bad_request("MESSAGE_TOO_LONG")
        del self.state.pending_callbacks[query_id]
        self.state.callback_answers.append(
            CallbackAnswer(
                callback_query_id=query_id,
                text=text,
                show_alert=params.flag("show_alert"),
                url=params.text("url"),
                cache_time=params.integer("cache_time") or 0,
                time=time.time(),
            )
        )
        return True

    def _commands_key(self, params: Params) -> tuple[str, str]:
        scope = params.json_value("scope", error="can't parse BotCommandScope JSON object") or {"type": "default"}
        if not isinstance(scope, dict) or not isinstance(scope.get("type"), str):
            raise bad_request("can't parse BotCommandScope JSON object")
        return json.dumps(scope, sort_keys=True), params.text("language_code") or ""

    async def _set_my_commands(self, params: Params) -> bool:
        commands = params.json_value("commands", error="can't parse commands JSON object")
        if not isinstance(commands, list):
            raise bad_request('parameter "commands" is required')
        if len(commands) > 100:
            raise bad_request("too many commands")
        stored: list[dict[str, Any]] = []
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_NAME.fullmatch(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            description = command.get("description")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            stored.append({"command": command["command"], "description": description})
        self.state.commands[self._commands_key(params)] = stored
        return True

    async def _get_my_commands(self, params: Params) -> list[dict[str, Any]]:
        return list(self.state.commands.get(self._commands_key(params), []))

    async def _delete_my_commands(self, params: Params) -> bool:
        self.state.commands.pop(self._commands_key(params), None)
        return True

    async def _set_chat_menu_button(self, params: Params) -> bool:
        chat_id = self._existing_chat(params).id if params.has("chat_id") else None
        button = params.json_value("menu_button", error="can't parse menu button JSON object")
        if button is None:
            self.state.menu_buttons.pop(chat_id, None)
        elif not isinstance(button, dict) or button.get("type") not in ("commands", "web_app", "default"):
            raise bad_request("can't parse menu button JSON object")
        else:
            self.state.menu_buttons[chat_id] = button
        return True

    async def _get_chat_menu_button(self, params: Params) -> dict[str, Any]:
        chat_id = self._existing_chat(params).id if params.has("chat_id") else None
        buttons = self.state.menu_buttons
        return buttons.get(chat_id) or buttons.get(None) or {"type": "default"}

    def _description_setter(self, field: str) -> Handler:
        limits = {"description": 512, "short_description": 120, "name": 64}

        async def set_value(params: Params) -> bool:
            value = params.text(field) or ""
            if len(value) > limits[field]:
                raise bad_request(f"{field} is too long")
            key = (field, params.text("language_code") or "")
            if value:
                self.state.descriptions[key] = value
            else:
                self.state.descriptions.pop(key, None)
            return True

        return set_value

    def _description_getter(self, field: str) -> Handler:
        async def get_value(params: Params) -> dict[str, Any]:
            language = params.text("language_code") or ""
            value = self.state.descriptions.get((field, language))
            if value is None:
                value = self.state.descriptions.get((field, ""))
            if value is None:
                value = str(self.bot_user["first_name"]) if field == "name" else ""
            return {field: value}

        return get_value

    async def _get_chat(self, params: Params) -> dict[str, Any]:
        chat = self._existing_chat(params)
        return {
            **chat.to_api(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _get_chat_member(self, params: Params) -> dict[str, Any]:
        chat = self._existing_chat(params)
        user_id = params.required_integer("user_id")
        if user_id == self.bot_user["id"]:
            return {"status": "member", "user": self.bot_user}
        user = self.state.users.get(user_id)
        if user is None:
            raise bad_request("user not found")
        return {"status": "member" if user_id in chat.member_ids else "left", "user": user.to_api()}

    async def _get_file(self, params: Params) -> dict[str, Any]:
        file_id = params.text("file_id", required=True)
        stored = self.state.files.get(file_id or "")
        if stored is None:
            raise bad_request("wrong file_id or the file is temporarily unavailable")
        return stored.to_api()

    async def _set_message_reaction(self, params: Params) -> bool:
        chat = self._target_chat(params)
        if self.state.find_message(chat, params.required_integer("message_id")) is None:
            raise bad_request("message to react not found")
        return True

    async def _pin_chat_message(self, params: Params) -> bool:
        chat = self._target_chat(params)
        if self.state.find_message(chat, params.required_integer("message_id")) is None:
            raise bad_request("message to pin not found")
        return True

    async def _unpin_chat_message(self, params: Params) -> bool:
        self._target_chat(params)
        return True


def _is_entity(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("type"), str)
        and isinstance(value.get("offset"), int)
        and isinstance(value.get("length"), int)
    )


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, dict):
                raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            if not isinstance(button.get("text"), str):
                raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
            if not any(action in button for action in _INLINE_BUTTON_ACTIONS):
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            if "callback_data" in button:
                data = button["callback_data"]
                # The limit is 1-64 bytes of UTF-8, not characters: ten Cyrillic letters are already 20 bytes.
                if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
                    raise bad_request("BUTTON_DATA_INVALID")
            if "url" in button and (not isinstance(button["url"], str) or not button["url"]):
                raise bad_request("BUTTON_URL_INVALID")

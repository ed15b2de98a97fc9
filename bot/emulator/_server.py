"""The emulator's HTTP face: the Bot API under ``/bot<token>/``, file downloads under ``/file/bot<token>/``, and
the user side as JSON under ``/_emulator/`` for people with curl (documented in the package docstring).
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.emulator._api import BotApi
from bot.emulator._errors import BotApiError, EmulatorError, EmulatorTimeoutError
from bot.emulator._params import Params, read_body
from bot.emulator._state import EmulatedUser

if TYPE_CHECKING:
    from bot.emulator._emulator import TelegramEmulator

__all__ = ["create_app"]

_MAX_UPLOAD = 50 * 1024 * 1024  # Telegram's own limit for files a bot uploads


def create_app(emulator: TelegramEmulator, api: BotApi) -> web.Application:
    routes = _Routes(emulator, api)
    app = web.Application(client_max_size=_MAX_UPLOAD)
    app.router.add_route("*", "/bot{token}/{method}", routes.bot_api)
    app.router.add_get("/file/bot{token}/{path:.+}", routes.download)
    app.router.add_post("/_emulator/users/{user_id}/messages", routes.user_message)
    app.router.add_post("/_emulator/users/{user_id}/callbacks", routes.user_callback)
    app.router.add_post("/_emulator/users/{user_id}/block", routes.user_block)
    app.router.add_post("/_emulator/users/{user_id}/unblock", routes.user_unblock)
    app.router.add_get("/_emulator/chats/{chat_id}", routes.chat)
    app.router.add_get("/_emulator/requests", routes.api_requests)
    app.router.add_post("/_emulator/reset", routes.reset)
    return app


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result}, dumps=_dumps)


def _failure(status: int, description: str) -> web.Response:
    return web.json_response({"ok": False, "error_code": status, "description": description}, status=status)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class _Routes:
    def __init__(self, emulator: TelegramEmulator, api: BotApi) -> None:
        self.emulator = emulator
        self.api = api

    async def bot_api(self, request: web.Request) -> web.Response:
        values: dict[str, Any] = dict(request.query)
        try:
            values.update(await read_body(request.headers, request.content))
        except BotApiError as error:
            return web.json_response(error.to_json(), status=error.error_code)
        status, body = await self.api.handle(request.match_info["token"], request.match_info["method"], Params(values))
        return web.json_response(body, status=status, dumps=_dumps)

    async def download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.api.token:
            return _failure(401, "Unauthorized")
        path = request.match_info["path"]
        stored = next((f for f in self.api.state.files.values() if f.file_path == path), None)
        if stored is None or stored.content is None:
            return _failure(404, "Not Found")
        return web.Response(body=stored.content, content_type=stored.mime_type or "application/octet-stream")

    async def _json(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except json.JSONDecodeError as error:
            raise EmulatorError(f"the body is not JSON: {error}") from error
        if not isinstance(body, dict):
            raise EmulatorError("the body must be a JSON object")
        return body

    def _user(self, request: web.Request, body: dict[str, Any]) -> EmulatedUser:
        """The user named in the path, created on first use; fields given in the body update it."""
        user_id = _int(request.match_info["user_id"], "user id")
        known = self.emulator.users.get(user_id)
        return EmulatedUser(
            id=user_id,
            first_name=str(body.get("first_name") or (known.first_name if known else f"User {user_id}")),
            last_name=body.get("last_name", known.last_name if known else None),
            username=body.get("username", known.username if known else None),
            language_code=body.get("language_code", known.language_code if known else None),
        )

    async def _run(self, request: web.Request, action: Any) -> web.Response:
        try:
            body = await self._json(request)
            return _ok(await action(body))
        except LookupError as error:
            return _failure(404, str(error))
        except (EmulatorError, KeyError, TypeError, ValueError) as error:
            return _failure(400, str(error))

    async def user_message(self, request: web.Request) -> web.Response:
        async def act(body: dict[str, Any]) -> Any:
            text = body.get("text")
            if not isinstance(text, str):
                raise EmulatorError('say what the user writes: {"text": "..."}')
            return await self.emulator.send_message(
                self._user(request, body),
                text,
                reply_to_message_id=body.get("reply_to_message_id"),
                chat_id=body.get("chat_id"),
            )

        return await self._run(request, act)

    async def user_callback(self, request: web.Request) -> web.Response:
        async def act(body: dict[str, Any]) -> Any:
            user = self._user(request, body)
            if "message_id" not in body or not isinstance(body.get("data"), str):
                raise EmulatorError('say which button: {"message_id": 12, "data": "<button text or callback data>"}')
            message = {
                "message_id": _int(body["message_id"], "message_id"),
                "chat": {"id": body.get("chat_id", user.id)},
            }
            return await self.emulator.press_button(user, message, body["data"])

        return await self._run(request, act)

    async def user_block(self, request: web.Request) -> web.Response:
        async def act(body: dict[str, Any]) -> Any:
            await self.emulator.block_bot(self._user(request, body))
            return True

        return await self._run(request, act)

    async def user_unblock(self, request: web.Request) -> web.Response:
        async def act(body: dict[str, Any]) -> Any:
            await self.emulator.unblock_bot(self._user(request, body))
            return True

        return await self._run(request, act)

    async def chat(self, request: web.Request) -> web.Response:
        async def act(body: dict[str, Any]) -> Any:
            chat_id = _int(request.match_info["chat_id"], "chat id")
            after = _int(request.query.get("after", "0"), "after")
            wait = float(request.query.get("wait", "0"))
            if wait > 0:
                with contextlib.suppress(EmulatorTimeoutError):  # after the wait, the chat as it is
                    await self.emulator.wait_until(
                        lambda: any(m.message_id > after for m in self.emulator.bot_messages(chat_id)),
                        min(wait, 60.0),
                    )
            messages = [m for m in self.emulator.chat_messages(chat_id) if m.message_id > after]
            chat = self.api.state.chats[chat_id]
            return {"chat": chat.to_api(), "messages": [m.to_json() for m in messages]}

        return await self._run(request, act)

    async def api_requests(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        found = self.emulator.calls(method) if method else self.emulator.requests
        return _ok(
            [
                {
                    "method": r.method,
                    "params": r.params,
                    "time": r.time,
                    "status": r.status,
                    "description": r.description,
                    "result": r.result,
                }
                for r in found
            ]
        )

    async def reset(self, request: web.Request) -> web.Response:
        self.emulator.reset()
        return _ok(True)


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as error:
        raise EmulatorError(f"{what} must be a number, not {value!r}") from error

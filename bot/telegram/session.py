"""The HTTP session to the Bot API: aiogram's aiohttp session, pointed at the configured server."""

from __future__ import annotations

from typing import Any, ClassVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

__all__ = ["BotApiSession"]


class BotApiSession(AiohttpSession):
    """aiogram's session for ``api_base`` (Telegram's servers, a local Bot API server, the emulator).

    aiogram's close waits 250 ms for TLS connections to shut down cleanly; a server on plain HTTP (a local Bot API
    server, the emulator) has none, so closing is immediate there.

    aiogram reads each reply as ``Response[<the method's result type>]``; pydantic keeps such a type only while
    something refers to it, so it was built anew (about 4 ms) every time the garbage collector had taken it,
    dozens of times in a burst of answers. The session keeps the ones it has used.
    """

    _response_types: ClassVar[dict[Any, type[Response[Any]]]] = {}

    def __init__(self, api_base: str) -> None:
        super().__init__(api=TelegramAPIServer.from_base(api_base.rstrip("/")))
        self._tls = api_base.startswith("https:")

    async def close(self) -> None:
        if self._tls:
            await super().close()
        elif self._session is not None and not self._session.closed:
            await self._session.close()

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self._response_types:
            self._response_types[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)

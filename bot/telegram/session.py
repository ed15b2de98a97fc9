"""The HTTP session to the Bot API: aiogram's aiohttp session, pointed at the configured server."""

from __future__ import annotations

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

__all__ = ["BotApiSession"]


class BotApiSession(AiohttpSession):
    """aiogram's session for ``api_base`` (Telegram's servers, a local Bot API server, the emulator).

    aiogram's close waits 250 ms for TLS connections to shut down cleanly; a server on plain HTTP (a local Bot API
    server, the emulator) has none, so closing is immediate there.
    """

    def __init__(self, api_base: str) -> None:
        super().__init__(api=TelegramAPIServer.from_base(api_base.rstrip("/")))
        self._tls = api_base.startswith("https:")

    async def close(self) -> None:
        if self._tls:
            await super().close()
        elif self._session is not None and not self._session.closed:
            await self._session.close()

"""The rasa-sdk action server: rasa-sdk's own Sanic app (``POST /webhook``, ``GET /actions``, ``GET /health``),
run in this process's event loop so the actions share its Redis client and encoder. ``bot.runner`` builds the
actions from the composition root and runs it (``zabota actions``), with the bridge to Rasa beside it.
"""

from __future__ import annotations

import logging
import socket
from types import TracebackType
from typing import Self

from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic
from sanic.server.async_server import AsyncioServer

__all__ = ["ActionServer"]

log = logging.getLogger(__name__)


class ActionServer:
    """rasa-sdk's Sanic app serving ``executor`` in the running event loop; ``async with`` starts and stops it."""

    def __init__(self, executor: ActionExecutor, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.executor = executor
        self.host = host
        self.port = port
        self.app: Sanic | None = None
        self._server: AsyncioServer | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = create_app(self.executor, cors_origins="")
        # Sanic rewrites its own methods on a first start ("touch-up"); a second app in one process must not.
        app.config.TOUCHUP = False
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))  # port 0: a free one, read back below
            server = await app.create_server(sock=sock, access_log=False)
            if server is None:
                raise RuntimeError("the action server did not start")
            await server.startup()
            await server.before_start()
            await server.after_start()
        except BaseException:
            sock.close()
            Sanic.unregister_app(app)
            raise
        self.port = sock.getsockname()[1]
        self.app, self._server, self._socket = app, server, sock

    async def stop(self) -> None:
        server, app, sock = self._server, self.app, self._socket
        self._server = self.app = self._socket = None
        if server is not None:
            await server.before_stop()
            server.close()
            await server.wait_closed()
            await server.after_stop()
        if app is not None:
            Sanic.unregister_app(app)
        if sock is not None:
            sock.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

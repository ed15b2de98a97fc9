"""``zabota actions``: the rasa-sdk action server, built from the same composition root as the Telegram bot.

The actions are built with their services and registered as instances; the server is rasa-sdk's own Sanic app
(``POST /webhook``, ``GET /actions``, ``GET /health``), run in this process's event loop so the actions share
its Redis client and encoder. Beside it runs the bridge that carries hand-offs through Rasa's HTTP API.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import TracebackType
from typing import Self

from rasa_sdk import Action
from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic
from sanic.server.async_server import AsyncioServer

from bot.factory import Application, build_application
from bot.rasa.actions import AskSurveyAction, HandoffAction, KbAnswerAction, RecordSurveyAnswerAction
from bot.rasa.bridge import RasaBridge
from bot.rasa.channel import RasaConversations, RasaOutbox
from bot.settings import Settings
from kb_index import Encoder
from surveys import Question

__all__ = ["ActionServer", "build_actions", "build_bridge", "build_executor", "run_action_server"]

log = logging.getLogger(__name__)


def build_actions(app: Application, conversations: RasaConversations) -> list[Action]:
    """The Zabota actions, each with the services the Telegram bot uses."""
    questions, alerts = app.survey_questions, app.survey_alerts
    surveys_on = app.settings.surveys.enabled
    return [
        KbAnswerAction(app.kb, app.texts, conversations, app.surveys, questions, alerts, gaps=app.gap_log),
        HandoffAction(app.customer_handoff, app.texts, conversations),
        AskSurveyAction(Question.CSAT, app.surveys, questions, app.desk, conversations, app.texts, enabled=surveys_on),
        AskSurveyAction(Question.CES, app.surveys, questions, app.desk, conversations, app.texts, enabled=surveys_on),
        RecordSurveyAnswerAction(app.surveys, questions, alerts, conversations, app.texts),
    ]


def build_executor(app: Application, conversations: RasaConversations | None = None) -> ActionExecutor:
    executor = ActionExecutor()
    for action in build_actions(app, conversations or RasaConversations(app.redis)):
        executor.register_action(action)
    return executor


def build_bridge(app: Application, conversations: RasaConversations | None = None) -> RasaBridge:
    actions = app.settings.actions
    return RasaBridge(
        app.redis,
        conversations or RasaConversations(app.redis),
        RasaOutbox(app.redis),
        app.desk,
        app.relay,
        rasa_url=actions.rasa_url,
        token=actions.rasa_token.get_secret_value(),
        output_channel=actions.output_channel,
        poll_seconds=actions.poll_seconds,
    )


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


async def run_action_server(
    settings: Settings, *, encoder: Encoder | None = None, stop: asyncio.Event | None = None
) -> int:
    """Serve the actions on ACTIONS_HOST:ACTIONS_PORT, with the bridge to Rasa beside them, until ``stop`` is set
    (by default: until SIGINT or SIGTERM)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    app = await build_application(settings, encoder=encoder)
    conversations = RasaConversations(app.redis)
    tasks = {
        asyncio.create_task(build_bridge(app, conversations).run(stop), name="rasa-bridge"),
        asyncio.create_task(app.kb.watch(stop, settings.kb.refresh_seconds), name="index-watch"),
    }
    try:
        async with ActionServer(build_executor(app, conversations), host=settings.actions.host,
                                port=settings.actions.port) as server:
            log.info("Rasa actions on %s (POST /webhook); Rasa's API at %s", server.url, settings.actions.rasa_url)
            await stop.wait()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app.close()
    return 0

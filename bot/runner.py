"""Running the application: the Telegram bot (long polling, webhook mode), the terminal demo against the
emulator, and the Rasa action server (``zabota actions``) with its bridge."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web
from rasa_sdk import Action
from rasa_sdk.executor import ActionExecutor

from bot.factory import Application, build_application
from bot.rasa.actions import AskSurveyAction, HandoffAction, KbAnswerAction, RecordSurveyAnswerAction
from bot.rasa.bridge import RasaBridge
from bot.rasa.channel import RasaConversations, RasaOutbox
from bot.rasa.server import ActionServer
from bot.settings import Settings
from bot.telegram.inbox import webhook_handler
from bot.web.server import web_app as serve_web_app
from kb_index import Encoder
from surveys import Question

__all__ = [
    "build_actions", "build_bridge", "build_executor", "run_action_server", "run_bot", "run_demo", "serve_web",
]

log = logging.getLogger(__name__)

DEMO_CUSTOMER_ID = 1001
DEMO_AGENT_ID = 2001


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def webhook_app(app: Application, *, with_web: bool = False) -> web.Application:
    """The aiohttp application that receives Telegram's webhook calls (secret header checked); ``with_web``: it
    also serves the web channel (the widget and the workplace, WEB_ON_WEBHOOK_PORT)."""
    telegram = app.settings.telegram
    secret = telegram.webhook_secret.get_secret_value()
    if not secret:
        raise ValueError("TELEGRAM_WEBHOOK_SECRET must be set in webhook mode: Telegram sends it back in a header.")
    served = serve_web_app(app.widget, app.console) if with_web else web.Application()
    # Telegram gets its 200 once the update is stored in the inbox; any process serving the inbox handles it.
    bot, _, inbox = app.telegram()
    served.router.add_post(telegram.webhook_path, webhook_handler(bot, inbox, secret))
    app.ops.register(served)
    return served


async def serve_web(app: Application) -> tuple[web.AppRunner, str] | None:
    """The web channel on WEB_HOST:WEB_PORT (when WEB_ENABLED): the website widget and the agents' workplace; the
    runner and the address browsers reach it at."""
    if app.widget is None and app.console is None:
        return None
    ws = app.settings.web
    runner = web.AppRunner(serve_web_app(app.widget, app.console))
    await runner.setup()
    site = web.TCPSite(runner, ws.host, ws.port)
    await site.start()
    address = ws.address if ws.port else ws.model_copy(update={"port": runner.addresses[0][1]}).address
    await _web_served_at(app, address)
    return runner, address


async def _web_served_at(app: Application, address: str) -> None:
    """Where browsers reach the web channel: the workplace's sign-in links point there."""
    ws = app.settings.web
    if app.console is not None:
        app.console.public_url = address  # sign-in links point here
        if app.bot is not None and ws.public_url.startswith("https://"):  # the Login Widget needs the bot's domain
            app.console.telegram_login_bot = (await app.bot.me()).username or ""
    log.info("website chat widget: %s/widget.js (a test page: %s/demo); agents' workplace: %s/console",
             address, address, address)


async def run_bot(settings: Settings, *, webhook: bool) -> int:
    app = await build_application(settings)
    app.start_background()
    shared = webhook and settings.web.on_webhook_port and (app.widget is not None or app.console is not None)
    widget = None if shared else await serve_web(app)
    try:
        if webhook:
            telegram = settings.telegram
            if not telegram.webhook_url:
                raise ValueError("TELEGRAM_WEBHOOK_URL is not set: the public HTTPS address Telegram should call.")
            runner = web.AppRunner(webhook_app(app, with_web=shared))
            await runner.setup()
            await web.TCPSite(runner, telegram.webhook_host, telegram.webhook_port).start()
            bot, dispatcher, _ = app.telegram()
            await bot.set_webhook(
                telegram.webhook_url.rstrip("/") + telegram.webhook_path,
                secret_token=telegram.webhook_secret.get_secret_value(),
                allowed_updates=dispatcher.resolve_used_update_types(),
            )
            log.info(
                "webhook mode: listening on %s:%s; each update is stored in Redis before Telegram is told it arrived",
                telegram.webhook_host, telegram.webhook_port,
            )
            if shared:
                await _web_served_at(app, settings.web.public_url.rstrip("/") or telegram.webhook_url.rstrip("/"))
            serving = asyncio.create_task(app.serve_inbox(), name="inbox")
            await _until_signal()
            await runner.cleanup()  # no new updates; those stored are finished or left for the next process
            app.stop()
            await serving
        else:
            ops = None
            if settings.app.ops_port:
                ops = web.AppRunner(app.ops.web_app())
                await ops.setup()
                await web.TCPSite(ops, settings.app.ops_host, settings.app.ops_port).start()
                log.info("/metrics and /healthz on %s:%s", settings.app.ops_host, settings.app.ops_port)
            try:
                await app.telegram()[0].delete_webhook()
                signalled = asyncio.create_task(_until_signal())
                signalled.add_done_callback(lambda _: app.stop())
                log.info("long polling: each update is stored in Redis before Telegram is told it arrived")
                await app.run_polling()
                signalled.cancel()
            finally:
                if ops is not None:
                    await ops.cleanup()
    finally:
        if widget is not None:
            await widget[0].cleanup()
        await app.close()
    return 0


async def run_demo(settings: Settings, *, lang: str = "ru", agent: bool = True) -> int:
    """The real bot on embedded defaults, against the emulator, with the terminal as the customer's app."""
    from bot.emulator import EmulatedUser, TelegramEmulator
    from bot.terminal_chat import TerminalChat, read_lines

    # The terminal is the chat: the dispatcher's per-update log lines would interleave with it.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("aiogram.dispatcher").setLevel(logging.WARNING)
    emulator = TelegramEmulator()
    await emulator.start()
    settings.telegram = settings.telegram.model_copy(update={"api_base": emulator.base_url})
    if agent and DEMO_AGENT_ID not in settings.handoff.agent_ids:
        settings.handoff = settings.handoff.model_copy(
            update={"agent_ids": [*settings.handoff.agent_ids, DEMO_AGENT_ID], "working_hours": "24/7"}
        )
    print("Starting Zabota (first start prepares the model and the index: about a minute) ...", file=sys.stderr)
    app = await build_application(settings, token=emulator.token)
    app.start_background()
    widget = await serve_web(app)
    polling = asyncio.create_task(app.run_polling(timeout=1), name="polling")
    customer = EmulatedUser(id=DEMO_CUSTOMER_ID, first_name={"uk": "Олена", "en": "Anna"}.get(lang, "Анна"),
                            language_code=lang)
    operator = EmulatedUser(id=DEMO_AGENT_ID, first_name="Ольга", language_code="ru") if agent else None
    interactive = sys.stdin.isatty()
    if interactive:
        print(
            "You are a customer of the Polka shop in Telegram. Type a message; a number taps a button.\n"
            + ("Lines starting with ':agent' are typed by the support agent (try ':agent /online').\n" if agent else "")
            + "Ctrl-D quits.",
            file=sys.stderr,
        )
    if widget is not None:
        print(f"The website chat widget, on a test page: {widget[1]}/demo?lang={lang}", file=sys.stderr)
        if agent and app.console is not None:
            link = await app.console.sign_in_link(DEMO_AGENT_ID)
            print(f"The agents' workplace, signed in as the demo agent (the link works once): {link}", file=sys.stderr)
    chat = TerminalChat(emulator, customer, operator, echo=not interactive)
    try:
        await chat.say("/start")
        await chat.show_replies()
        await chat.run(read_lines(sys.stdin, "> "))
    finally:
        app.stop()
        await asyncio.gather(polling, return_exceptions=True)
        if widget is not None:
            await widget[0].cleanup()
        await app.close()
        await emulator.stop()
    return 0


# ---------------------------------------------------------------------- the Rasa action server


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
    with_telegram = bool(settings.telegram.bot_token.get_secret_value())
    app = await build_application(settings, encoder=encoder, telegram=with_telegram)
    if not with_telegram:
        log.info("no TELEGRAM_BOT_TOKEN: agents and supervisors are told what happens through the bot's process "
                 "(zabota run) on the same Redis")
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

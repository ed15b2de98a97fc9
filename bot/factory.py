"""The composition root: settings in, ready services out. The CLI, the bot and the tests all build here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from aiogram import Bot, Dispatcher
from aiogram.types import Message
from redis.asyncio import Redis

import handoff
import surveys as surveys_package
from bot.core.answers import AnswerLedger
from bot.core.channels import Channel, channel_of
from bot.core.conversation import ConversationLog, DialogStates
from bot.core.dialog import CustomerDialog
from bot.core.gaps import GapLog
from bot.core.texts import CUSTOMER_LOCALES, Texts
from bot.metrics import Metrics, OpsEndpoints
from bot.rasa.channel import RasaOutbox
from bot.redis_server import EmbeddedRedis, connect_redis
from bot.settings import Settings
from bot.telegram.delivery import TelegramDelivery
from bot.telegram.inbox import Inbox, poll_telegram
from bot.telegram.middlewares import FloodControl, UpdateOnce
from bot.telegram.replies import TrackCallback
from bot.telegram.routers import admin, customers
from bot.telegram.routers.agents import build_agents_router, build_refusals_router
from bot.telegram.sender import OutgoingLimits, SendOnce, SharedPace, TelegramPacer
from bot.telegram.session import BotApiSession
from bot.telegram.staff import TelegramCustomers, TelegramStaff
from bot.telegram.surveys import SurveyMessenger
from bot.telegram.surveys import build_router as build_surveys_router
from bot.web.chats import WebChats, WebCustomers, WebDelivery
from bot.web.console import Console
from bot.web.files import WebFiles
from bot.web.knowledge import KnowledgePage
from bot.web.reports import ReportsPage
from bot.web.team import TeamPage
from bot.web.widget import WidgetServer
from handoff import HandoffDesk, WorkingHours
from handoff.assign import AutoAssign
from handoff.customer import CustomerHandoff
from handoff.events import HandoffEvents
from handoff.monitor import QueueMonitor
from handoff.ports import CustomerChannel, StaffChannel
from handoff.relay import Relay, RelayedStaff
from handoff.roster import AgentDirectory, Roster
from handoff.search import ConversationSearch
from handoff.workspace import AgentWorkspace, load_canned
from intents import IntentClassifier, default_examples
from kb_index import (
    BuildOptions,
    DecisionThresholds,
    EmbeddingCache,
    Encoder,
    IndexStore,
    KnowledgeBase,
    ScoringWeights,
)
from surveys import Survey, SurveyService
from surveys.alerts import LowScoreAlerts
from surveys.questions import SurveyQuestions
from surveys.taps import SurveyTaps
from surveys.triggers import RelayedSurveys, SurveyTriggers

__all__ = [
    "Application",
    "build_application",
    "build_bot",
    "build_encoder",
    "build_knowledge_base",
    "build_options_from",
    "ensure_index",
    "thresholds_from",
    "weights_from",
]

log = logging.getLogger(__name__)


def build_encoder(settings: Settings) -> Encoder:
    kb = settings.kb
    return Encoder.load(
        kb.model, settings.cache_dir, batch_size=kb.batch_size, quantize=kb.quantize, engine=kb.engine,
        threads=kb.threads,
    )


def thresholds_from(settings: Settings) -> DecisionThresholds:
    kb = settings.kb
    return DecisionThresholds(
        answer=kb.answer_threshold, clarify=kb.clarify_threshold, ambiguity_margin=kb.ambiguity_margin
    )


def weights_from(settings: Settings) -> ScoringWeights:
    kb = settings.kb
    return ScoringWeights(
        answer_weight=kb.answer_weight, lexical_weight=kb.lexical_weight, classifier_weight=kb.classifier_weight
    )


def build_options_from(settings: Settings) -> BuildOptions:
    kb = settings.kb
    return BuildOptions(
        approximate_above=kb.approximate_above,
        classifier_min_phrasings=kb.classifier_min_phrasings,
        classifier_max_articles=kb.classifier_max_articles,
        recalibrate_share=kb.recalibrate_share,
    )


def build_knowledge_base(
    settings: Settings, encoder: Encoder | None = None, *, refresh_interval: float = 1.0
) -> KnowledgeBase:
    """``refresh_interval``: how often a search looks for a new index version itself; a long-running
    application sets it to infinity and runs ``KnowledgeBase.watch`` instead, which loads off the event loop."""
    return KnowledgeBase(
        IndexStore(settings.kb_dir),
        encoder or build_encoder(settings),
        thresholds_from(settings),
        weights=weights_from(settings),
        build_options=build_options_from(settings),
        default_lang=settings.kb.default_lang,
        cache=EmbeddingCache(settings.cache_dir / "embeddings.sqlite"),
        refresh_interval=refresh_interval,
    )


# ---------------------------------------------------------------------------- the Telegram application


@dataclass
class Application:
    """Everything the running bot is made of; built by ``build_application``, closed by ``close``."""

    settings: Settings
    redis: Redis
    embedded_redis: EmbeddedRedis | None
    bot: Bot | None  # None: a process without the Telegram channel (``zabota actions`` without a token)
    dispatcher: Dispatcher | None
    kb: KnowledgeBase
    intents: IntentClassifier
    texts: Texts
    agent_texts: Texts
    dialog: CustomerDialog
    desk: HandoffDesk
    relay: Relay
    workspace: AgentWorkspace
    monitor: QueueMonitor | None
    surveys: SurveyService
    survey_questions: SurveyQuestions
    survey_alerts: LowScoreAlerts
    survey_taps: SurveyTaps
    survey_messenger: SurveyMessenger | None
    survey_triggers: SurveyTriggers
    update_once: UpdateOnce
    inbox: Inbox | None
    pacer: TelegramPacer
    customer_handoff: CustomerHandoff
    gap_log: GapLog
    metrics: Metrics
    ops: OpsEndpoints
    widget: WidgetServer | None  # the website chat widget (WEB_ENABLED), served by ``bot.runner``
    console: Console | None  # the agents' web workplace (WEB_ENABLED), served with the widget
    search: ConversationSearch  # closed conversations, by number, name and words
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start_background(self) -> None:
        """The relay worker and the queue monitor, owned here and cancelled by ``close``."""
        jobs = [
            ("relay", self.relay.run(self._stop)),
            ("surveys", self.survey_triggers.run(self._stop)),
            ("index-watch", self.kb.watch(self._stop, self.settings.kb.refresh_seconds)),
            ("search-catch-up", self._catch_up_search()),
        ]
        if self.monitor is not None:
            jobs.append(("queue-monitor", self.monitor.run(self._stop)))
        if self.widget is not None:
            jobs.append(("web-hub", self.widget.hub.run(self._stop)))
        for name, job in jobs:
            task = asyncio.create_task(job, name=name)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _catch_up_search(self) -> None:
        try:
            await self.search.catch_up()
        except Exception:
            log.exception("indexing closed tickets for search failed; new ones are still indexed as they close")

    async def run_polling(self, stop: asyncio.Event | None = None, *, timeout: int = 10) -> None:
        """Long polling through the durable inbox (``bot.telegram.inbox``) until ``stop`` (or ``close``)."""
        stop = stop or self._stop
        bot, dispatcher, inbox = self.telegram()
        allowed = dispatcher.resolve_used_update_types()
        async with asyncio.TaskGroup() as group:  # one failing (a revoked token) stops the other
            group.create_task(poll_telegram(bot, inbox, stop, timeout=timeout, allowed_updates=allowed))
            group.create_task(inbox.serve(bot, dispatcher, stop))

    async def serve_inbox(self, stop: asyncio.Event | None = None) -> None:
        """Handle what the webhook stores in the inbox until ``stop`` (or ``close``)."""
        bot, dispatcher, inbox = self.telegram()
        await inbox.serve(bot, dispatcher, stop or self._stop)

    def telegram(self) -> tuple[Bot, Dispatcher, Inbox]:
        """The Telegram channel's bot, dispatcher and inbox (an application built without it has none)."""
        if self.bot is None or self.dispatcher is None or self.inbox is None:
            raise RuntimeError("this application was built without the Telegram channel (no TELEGRAM_BOT_TOKEN)")
        return self.bot, self.dispatcher, self.inbox

    def stop(self) -> None:
        """Polling and the background jobs finish what they hold and return; ``close`` releases the rest."""
        self._stop.set()

    async def close(self) -> None:
        self._stop.set()
        # A cancel that lands inside a Redis call can be swallowed by the client: repeated until each has stopped.
        while self.tasks:
            for task in list(self.tasks):
                task.cancel()
            await asyncio.wait(set(self.tasks), timeout=1.0)
        await self.relay.step_down()
        await self.kb.close()
        if self.bot is not None:
            await self.bot.session.close()
        await self.redis.aclose()
        if self.embedded_redis is not None:
            await self.embedded_redis.stop()


def _telegram_files(bot: Bot) -> Callable[[str], Awaitable[bytes]]:
    """A Telegram file's bytes by its id (an agent's photo or document, for a customer on the web)."""

    async def fetch(file_id: str) -> bytes:
        downloaded = await bot.download(file_id)
        return downloaded.read() if downloaded is not None else b""

    return fetch


class _CustomersByChannel:
    """The queue monitor's edits of what customers were shown, on the channel each customer is on."""

    def __init__(self, telegram: CustomerChannel, web: CustomerChannel) -> None:
        self._telegram = telegram
        self._web = web

    async def edit(self, chat_id: int, message_id: int, text: str) -> bool:
        channel = self._web if channel_of(chat_id) is Channel.WEB else self._telegram
        return await channel.edit(chat_id, message_id, text)


def _remember_sent(desk: HandoffDesk, surveys: SurveyService) -> Callable[[str, int], Awaitable[None]]:
    """Messages the bot edits later remember their id, on any channel: a ticket's queue status, a survey."""

    async def remember(name: str, message_id: int) -> None:
        kind, _, ident = name.partition(":")
        if kind == "ticket":
            await desk.update(ident, status_message_id=message_id)
        elif kind == "survey":
            await surveys.attach_message(ident, message_id)

    return remember


def _tracker(remember: Callable[[str, int], Awaitable[None]]) -> TrackCallback:
    """The same for a Telegram message."""

    async def track(name: str, message: Message) -> None:
        await remember(name, message.message_id)

    return track


async def _relayed_or_staff(user_id: int, directory: AgentDirectory, desk: HandoffDesk) -> bool:
    """Flood control is for the bot's own answers: agents, and customers talking with a person, are exempt."""
    return await directory.is_staff(user_id) or await desk.open_ticket_of(user_id) is not None


def build_bot(
    settings: Settings,
    *,
    token: str | None = None,
    pacer: TelegramPacer | None = None,
    send_once: SendOnce | None = None,
) -> Bot:
    token = token or settings.telegram.bot_token.get_secret_value()
    if not token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set (get one from @BotFather), or run 'zabota demo'.")
    session = BotApiSession(settings.telegram.api_base)
    if send_once is not None:  # first: a message not sent again takes nothing of the pacer's budget
        session.middleware(send_once)
    if pacer is not None:
        session.middleware(pacer)
    return Bot(token, session=session)


def ensure_index(kb: KnowledgeBase, settings: Settings) -> None:
    """On a first start there is no index yet: build one from KB_SOURCE. An index built with another model (a new
    KB_MODEL, KB_ENGINE or KB_QUANTIZE, or a new version of the model) cannot be searched with this one's
    questions: it is built again from KB_SOURCE too, rather than every question failing."""
    version = kb.store.current_version()
    if version is None:
        log.info("no knowledge-base index yet: building one from %s", settings.kb.source)
        kb.reindex(settings.kb.source)
        return
    built_with = kb.store.read_manifest(version).model_id
    if built_with != kb.encoder.model_id:
        log.warning(
            "the knowledge-base index %s was built with %s, but questions are encoded with %s: building it again "
            "from %s", version, built_with, kb.encoder.model_id, settings.kb.source,
        )
        kb.reindex(settings.kb.source)


async def build_application(
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    token: str | None = None,
    redis: Redis | None = None,
    telegram: bool = True,
) -> Application:
    """Settings in, a ready application out: Redis, the encoder, the index, the services, the dispatcher.

    ``telegram=False`` builds it without the Telegram channel, for a process that serves another channel only
    (``zabota actions`` without a token): what it must tell agents and supervisors, and the surveys it sends,
    go through the relay's outbox to the process that runs Telegram on the same Redis.
    """
    embedded = None
    if redis is None:
        redis, embedded = await connect_redis(
            settings.redis.url, settings.app.data_dir, max_connections=settings.redis.max_connections
        )
    encoder = encoder or build_encoder(settings)
    kb = build_knowledge_base(settings, encoder, refresh_interval=float("inf"))
    await asyncio.to_thread(ensure_index, kb, settings)
    intent_classifier = await asyncio.to_thread(
        IntentClassifier.load_or_train,
        settings.app.data_dir / "intents",
        encoder,
        default_examples(),
        cache=kb.cache,
    )
    default_lang = settings.kb.default_lang
    texts = Texts.load(CUSTOMER_LOCALES, default_lang)
    agent_texts = Texts.load(Path(handoff.__file__).parent / "locales", default_lang)
    retention = timedelta(days=settings.dialog.conversation_retention_days)
    conversation_log = ConversationLog(redis, retention)
    states = DialogStates(redis, retention)
    gap_log = GapLog(redis, retention_days=settings.dialog.conversation_retention_days)
    hs = settings.handoff
    hours = WorkingHours.parse(hs.working_hours, hs.timezone)
    desk = HandoffDesk(
        redis, max_tickets_per_agent=hs.max_tickets_per_agent, default_wait=hs.default_wait_minutes * 60
    )
    pacer = TelegramPacer(shared=SharedPace(redis, OutgoingLimits().per_bot_per_second))
    metrics = Metrics()
    paced = pacer if settings.telegram.outgoing_limits else None
    bot: Bot | None = None
    if telegram:
        bot = build_bot(settings, token=token, pacer=paced, send_once=SendOnce(redis))
        bot.session.middleware(metrics.request_middleware())
    directory = AgentDirectory(
        Roster(redis), frozenset(hs.agent_ids), frozenset(hs.supervisor_ids), frozenset(hs.admin_ids)
    )
    events = HandoffEvents()  # each party below is subscribed to what it must hear, once all exist
    web_chats = WebChats(redis, retention_days=settings.dialog.conversation_retention_days)
    files = WebFiles(redis, settings.app.data_dir / "web" / "files", max_bytes=int(settings.web.max_upload_mb * 1_000_000),
                     retention_days=settings.dialog.conversation_retention_days)
    relay = Relay(
        redis,
        desk,
        # customers of a Rasa assistant (``zabota actions``) and of the website widget first; every other chat
        # is a Telegram one
        [
            RasaOutbox(redis),
            WebDelivery(web_chats, files, _telegram_files(bot) if bot is not None else None),
            *([TelegramDelivery(bot)] if bot is not None else []),
        ],
        header=lambda ticket: f"💬 {ticket.id} · {ticket.customer_name}",
        events=events,
    )
    staff: StaffChannel = TelegramStaff(bot) if bot is not None else RelayedStaff(relay)
    customer_handoff = CustomerHandoff(desk, texts, hours, relay)
    def _article_title(article_id: str, lang: str) -> str:
        return kb.article(article_id, lang).title

    workspace = AgentWorkspace(
        redis,
        desk,
        relay,
        staff,
        directory,
        agent_texts,
        texts,
        canned=load_canned(hs.canned_replies_dir, default_lang),
        article_title=_article_title,
    )
    auto_assign = AutoAssign(desk, workspace, enabled=hs.auto_assign, accept_seconds=hs.accept_minutes * 60)
    # The queue monitor edits what customers were shown and keeps the agents' board: where Telegram runs.
    monitor = QueueMonitor(
        redis,
        workspace,
        _CustomersByChannel(TelegramCustomers(bot), WebCustomers(web_chats)),
        agents_chat_id=hs.agents_chat_id,
        supervisor_ids=hs.supervisor_ids,
        wait_alert_seconds=hs.wait_alert_minutes * 60,
        silence_seconds=hs.customer_silence_minutes * 60,
        board_lang=default_lang,
        each_pass=auto_assign.each_pass,
    ) if bot is not None else None
    ss = settings.surveys
    survey_service = SurveyService(
        redis,
        expiry_seconds=ss.expiry_hours * 3600,
        fatigue_seconds=ss.fatigue_days * 86400,
        nps_enabled=ss.nps_enabled,
        nps_period_seconds=ss.nps_period_days * 86400,
        retention_seconds=ss.retention_days * 86400,
    )

    async def transcript(survey: Survey) -> str:
        if survey.ticket_id:
            turns = await desk.context(survey.ticket_id)
        else:
            turns = await conversation_log.recent(survey.chat_id, 20)
        return workspace.card.transcript(turns, agent_texts.default_lang)

    survey_questions = SurveyQuestions(Texts.load(Path(surveys_package.__file__).parent / "locales", default_lang))
    survey_alerts = LowScoreAlerts(
        staff,
        agent_texts,
        alert_chat_ids=[*hs.supervisor_ids, *([ss.alert_chat_id] if ss.alert_chat_id else [])],
        more_alert_chat_ids=directory.supervisors,
        transcript=transcript,
    )
    survey_taps = SurveyTaps(survey_service, survey_questions, survey_alerts)
    survey_messenger = SurveyMessenger(survey_service, bot, survey_questions, survey_taps) if bot is not None else None
    survey_triggers = SurveyTriggers(
        redis,
        survey_service,
        survey_questions,
        survey_messenger or RelayedSurveys(relay, survey_questions),
        desk,
        relay,
        enabled=ss.enabled,
        silence_seconds=ss.assumed_resolved_minutes * 60,
        # the Telegram messenger sends to Telegram chats; the relay's outbox reaches every channel
        sender_reaches=lambda chat_id: survey_messenger is not None and channel_of(chat_id) is Channel.TELEGRAM,
    )
    events.ticket_opened.append(auto_assign.ticket_changed)  # first: a ticket given out is not announced
    events.ticket_opened.append(workspace.announcements.announce)
    events.ticket_closed.append(auto_assign.ticket_changed)
    events.waiting_message.append(customer_handoff.acknowledge_waiting)
    events.closed_by_customer.append(workspace.closed_by_customer)
    events.ticket_closed.append(survey_triggers.ticket_closed)
    search = ConversationSearch(redis, desk)
    events.ticket_closed.append(search.ticket_closed)
    events.delivered.append(survey_triggers.delivered)
    answers = AnswerLedger(redis)
    dialog = CustomerDialog(
        kb,
        intent_classifier,
        texts,
        conversation_log,
        states,
        customer_handoff,
        surveys=survey_triggers,
        gaps=gap_log,
        observer=metrics,
        answers=answers,
        default_lang=default_lang,
    )
    update_once = UpdateOnce(redis)
    dispatcher: Dispatcher | None = None
    if bot is not None:
        dispatcher = Dispatcher(
            dialog=dialog,
            desk=desk,
            relay=relay,
            workspace=workspace,
            directory=directory,
            customer_handoff=customer_handoff,
            kb=kb,
            texts=texts,
            agent_texts=agent_texts,
            survey_messenger=survey_messenger,
            surveys=survey_service,
            gap_log=gap_log,
            settings=settings,
            track_sent=_tracker(_remember_sent(desk, survey_service)),
        )
        dispatcher.update.outer_middleware(metrics.update_middleware())
        # One chat's updates are already handled in order, across processes, by the inbox (bot.telegram.inbox).
        dispatcher.update.outer_middleware(update_once)
        customers_router = customers.build_router()
        customers_router.message.outer_middleware(
            FloodControl(
                redis,
                conversation_log,
                texts,
                limit=settings.dialog.flood_limit,
                window=settings.dialog.flood_window_seconds,
                exempt=lambda user_id: _relayed_or_staff(user_id, directory, desk),
            )
        )
        dispatcher.include_routers(
            admin.build_router(),
            build_agents_router(),
            build_refusals_router(),
            build_surveys_router(),
            customers_router,
        )
    widget = console = None
    if settings.web.enabled:
        widget = WidgetServer(
            redis, settings.web, dialog, desk, relay, customer_handoff, _remember_sent(desk, survey_service),
            survey_taps, web_chats, files,
        )
        await widget.ready()
        console = Console(redis, desk, workspace, relay, directory, survey_service,
                          public_url=settings.web.address, default_lang=default_lang,
                          telegram_token=bot.token if bot is not None else "", files=files,
                          knowledge=KnowledgePage(redis, kb, settings.kb.source, gap_log), search=search,
                          reports=ReportsPage(desk, survey_service, answers, agent_texts, _article_title), kb=kb,
                          team=TeamPage(directory, desk, workspace))
    if dispatcher is not None:
        dispatcher["console_link"] = console.sign_in_link if console is not None else None
    return Application(
        settings=settings,
        redis=redis,
        embedded_redis=embedded,
        bot=bot,
        dispatcher=dispatcher,
        kb=kb,
        intents=intent_classifier,
        texts=texts,
        agent_texts=agent_texts,
        dialog=dialog,
        desk=desk,
        relay=relay,
        workspace=workspace,
        monitor=monitor,
        surveys=survey_service,
        survey_questions=survey_questions,
        survey_alerts=survey_alerts,
        survey_taps=survey_taps,
        survey_messenger=survey_messenger,
        survey_triggers=survey_triggers,
        update_once=update_once,
        inbox=Inbox(redis, bot.id) if bot is not None else None,
        pacer=pacer,
        customer_handoff=customer_handoff,
        gap_log=gap_log,
        metrics=metrics,
        ops=OpsEndpoints(metrics, redis, desk, survey_service, kb),
        widget=widget,
        console=console,
        search=search,
    )

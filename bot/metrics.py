"""What a running bot reports to Prometheus (``/metrics``) and to a load balancer (``/healthz``).

Counters (updates in, messages out, decisions, search latency, errors) are kept per process, as Prometheus
expects: scrape every process and sum. The figures that live in Redis (the queue, tickets by state, CSAT and
CES) are read from it at scrape time, so every process reports the same shared values.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.methods import Response, TelegramMethod
from aiogram.types import TelegramObject, Update
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from redis.asyncio import Redis

from bot.telegram.sender import SENDING_METHODS
from handoff import HandoffDesk
from kb_index import KnowledgeBase, SearchResult
from surveys import SurveyService
from surveys.reports import Figures, build_report

__all__ = ["Metrics", "OpsEndpoints"]

log = logging.getLogger(__name__)

SURVEY_WINDOW = 30 * 86400  # CSAT and CES over the last 30 days, like /stats


class Metrics:
    """The process's metrics, in a registry of their own (several applications may share a process in tests)."""

    def __init__(self, *, survey_refresh_seconds: float = 60.0) -> None:
        # Reading 30 days of surveys is not free: once a minute is enough for a figure that moves daily.
        self.survey_refresh_seconds = survey_refresh_seconds
        self.registry = registry = CollectorRegistry()
        self.updates = Counter("zabota_updates", "Telegram updates received, by type.", ["type"], registry=registry)
        self.messages_sent = Counter(
            "zabota_messages_sent", "Messages the bot sent or edited, by Bot API method.", ["method"], registry=registry
        )
        self.decisions = Counter(
            "zabota_decisions", "Knowledge-base decisions: answer, clarify, handoff.", ["decision"], registry=registry
        )
        self.search_seconds = Histogram(
            "zabota_search_seconds",
            "Time to answer one question from the knowledge base (encode, search, rank).",
            buckets=(0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.errors = Counter("zabota_errors", "Errors, by kind.", ["kind"], registry=registry)
        self.queue_length = Gauge("zabota_queue_length", "Tickets waiting for an agent.", registry=registry)
        self.longest_wait = Gauge(
            "zabota_queue_longest_wait_seconds", "How long the longest-waiting ticket has waited.", registry=registry
        )
        self.tickets = Gauge(
            "zabota_tickets", "Tickets by state (closed ones by outcome), all processes.", ["state"], registry=registry
        )
        self.agents_online = Gauge("zabota_agents_online", "Agents who are /online.", registry=registry)
        self.csat = Gauge(
            "zabota_csat_ratio", "Share of CSAT answers that are 4 or 5, last 30 days.", registry=registry
        )
        self.ces = Gauge("zabota_ces_mean", "Mean CES answer (1 very hard ... 5 very easy), last 30 days.",
                         registry=registry)
        self.survey_answers = Gauge(
            "zabota_survey_answers", "Survey answers in the last 30 days, by question.", ["question"],
            registry=registry,
        )
        self.index_articles = Gauge(
            "zabota_index_articles", "Articles in the knowledge-base index being served.", registry=registry
        )
        for decision in ("answer", "clarify", "handoff"):
            self.decisions.labels(decision)
        for state in ("waiting", "assigned"):
            self.tickets.labels(state)
        self._figures: Figures | None = None
        self._figures_at = 0.0

    # -------------------------------------------------------------- hooks

    def searched(self, result: SearchResult, seconds: float) -> None:
        self.decisions.labels(result.decision.value).inc()
        self.search_seconds.observe(seconds)

    def search_failed(self, error: BaseException) -> None:
        self.errors.labels("search").inc()

    def update_middleware(self) -> BaseMiddleware:
        return _UpdateCounter(self)

    def request_middleware(self) -> BaseRequestMiddleware:
        return _RequestCounter(self)

    # -------------------------------------------------------------- scrape

    async def refresh(self, desk: HandoffDesk, surveys: SurveyService, kb: KnowledgeBase) -> None:
        """Read the shared figures from Redis and the index; called on each scrape."""
        counts = await desk.counts()
        for state, count in counts.items():
            self.tickets.labels(state).set(count)
        self.queue_length.set(counts["waiting"])
        self.longest_wait.set(await desk.queue.longest_wait())
        self.agents_online.set(len(await desk.shifts.on_shift()))
        now = time.time()
        if self._figures is None or now - self._figures_at >= self.survey_refresh_seconds:
            self._figures = build_report(await surveys.surveys(now - SURVEY_WINDOW, now), now - SURVEY_WINDOW, now).overall
            self._figures_at = now
        figures = self._figures
        self.csat.set(figures.csat if figures.csat is not None else float("nan"))
        self.ces.set(figures.ces if figures.ces is not None else float("nan"))
        self.survey_answers.labels("csat").set(figures.csat_answers)
        self.survey_answers.labels("ces").set(figures.ces_answers)
        try:
            self.index_articles.set(len(kb.index))
        except Exception:  # reported by /healthz; the other figures still come out
            self.index_articles.set(0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _UpdateCounter(BaseMiddleware):
    """Outer middleware of ``dispatcher.update``: counts updates, and handler errors by update type."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        kind = event.event_type if isinstance(event, Update) else type(event).__name__
        self.metrics.updates.labels(kind).inc()
        try:
            return await handler(event, data)
        except Exception:
            self.metrics.errors.labels("handler").inc()
            raise


class _RequestCounter(BaseRequestMiddleware):
    """Session middleware: messages that reached Telegram, and Bot API errors by kind."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self, make_request: NextRequestMiddlewareType[Any], bot: Any, method: TelegramMethod[Any]
    ) -> Response[Any]:
        try:
            response = await make_request(bot, method)
        except TelegramNetworkError:
            self.metrics.errors.labels("telegram_network").inc()
            raise
        except TelegramAPIError as error:
            self.metrics.errors.labels(f"telegram_{_snake(type(error).__name__)}").inc()
            raise
        if method.__api_method__ in SENDING_METHODS:
            self.metrics.messages_sent.labels(method.__api_method__).inc()
        return response


def _snake(name: str) -> str:
    name = name.removeprefix("Telegram")
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


class OpsEndpoints:
    """``GET /metrics`` and ``GET /healthz`` for one application, added to any aiohttp app."""

    def __init__(
        self,
        metrics: Metrics,
        redis: Redis,
        desk: HandoffDesk,
        surveys: SurveyService,
        kb: KnowledgeBase,
        *,
        timeout: float = 2.0,
    ) -> None:
        self.metrics = metrics
        self.redis = redis
        self.desk = desk
        self.surveys = surveys
        self.kb = kb
        self.timeout = timeout

    def register(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self.handle_metrics)
        app.router.add_get("/healthz", self.handle_health)

    def web_app(self) -> web.Application:
        app = web.Application()
        self.register(app)
        return app

    async def handle_metrics(self, request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(self.metrics.refresh(self.desk, self.surveys, self.kb), self.timeout)
        except Exception as error:  # Redis down: the process counters still come out; /healthz says what broke
            log.warning("metrics: shared figures unavailable (%s)", error)
            self.metrics.errors.labels("metrics_refresh").inc()
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def check(self) -> dict[str, str]:
        """Each dependency with "ok" or what is wrong with it."""
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.redis.ping(), self.timeout)
            checks["redis"] = "ok"
        except Exception as error:
            checks["redis"] = f"unavailable: {str(error) or type(error).__name__}"
        try:
            index = self.kb.index
            checks["index"] = "ok" if len(index) else "empty"
            checks["index_version"] = index.version
        except Exception as error:
            checks["index"] = f"unavailable: {error}"
        return checks

    async def handle_health(self, request: web.Request) -> web.Response:
        checks = await self.check()
        healthy = checks["redis"] == "ok" and checks["index"] == "ok"
        return web.Response(
            status=200 if healthy else 503,
            text=json.dumps({"status": "ok" if healthy else "unhealthy", **checks}, ensure_ascii=False),
            content_type="application/json",
        )

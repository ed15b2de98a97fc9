"""The supervisors' and admins' reports of the workplace (``/console/reports``): the bot's self-service resolution
rate (overall and by article), hand-offs by reason and channel, each agent's first response and handling time,
CSAT and CES by agent, channel, language, article and day with the survey response rate, the queue now.

Every table is drawn with a bar for its main share, exported as CSV (``reports.csv?table=NAME``; without a table:
every survey answer), and the figures of tickets lead to the tickets behind them (``reports/tickets?reason=...``).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from aiohttp import web

from bot.core.answers import AnswerLedger, resolution_by_article
from bot.core.texts import Texts
from bot.web.staff import StaffMember, Workplace
from handoff import HandoffDesk, Ticket
from handoff.durations import format_duration
from handoff.reports import percentile, ticket_report
from kb_index.errors import KbError
from surveys.reports import Figures, build_report, export_csv
from surveys.service import SurveyService

__all__ = ["ReportsPage", "Row", "Table"]

ROOT = "/console/reports"
_ARTICLES = 30  # rows of the by-article tables: the most answered


@dataclass
class Row:
    cells: list[str]
    share: float | None = None  # drawn as a bar in the table's bar column (0..1)
    link: str = ""  # the tickets behind the row


@dataclass
class Table:
    key: str  # its name in reports.csv?table=
    title: str
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    bar_column: int = 0  # the column drawn with the row's share (0: none)
    css: str = "report"
    note: str = ""

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(row.cells)
        return out.getvalue()


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.0f}%"


class ReportsPage:
    def __init__(
        self,
        desk: HandoffDesk,
        surveys: SurveyService,
        answers: AnswerLedger,
        agent_texts: Texts,
        article_title: Callable[[str, str], str],
    ) -> None:
        self.desk = desk
        self.surveys = surveys
        self.answers = answers
        self.agent_texts = agent_texts
        self._article_title = article_title

    def register(self, app: web.Application, console: Workplace) -> None:
        self.console = console
        app.router.add_get(ROOT, self._page)
        app.router.add_get(ROOT + ".csv", self._csv)
        app.router.add_get(ROOT + "/tickets", self._tickets)

    def _title(self, article_id: str, lang: str) -> str:
        try:
            return self._article_title(article_id, lang)
        except (LookupError, KbError):  # no longer in the knowledge base (or no index yet)
            return article_id

    # ------------------------------------------------------------------ the tables

    async def tables(self, me: StaffMember, days: int) -> list[Table]:
        until = time.time()
        since = until - days * 86400
        t = self.console.texts

        def say(key: str, **params: object) -> str:
            return t.get(me.lang, key, **params)

        tables = [await self._self_service(me, since, until, say)]
        tables += self._desk_tables(me, days, await self.desk.tickets_since(since), say)
        surveys = await self.surveys.surveys(since, until)
        report = build_report(surveys, since, until)
        by_channel: dict[str, Figures] = {}
        for survey in surveys:
            by_channel.setdefault(survey.channel or "telegram", Figures()).add(survey)
        groups = [
            ("overall", [(say("overall"), report.overall)]),
            ("by_agent", sorted(report.by_agent.items())),
            ("by_channel", sorted(by_channel.items())),
            ("by_lang", sorted(report.by_lang.items())),
            ("by_day", sorted(report.by_day.items())),
            ("by_article", sorted(report.by_article.items(), key=lambda item: -item[1].sent)[:_ARTICLES]),
        ]
        columns = [say("col_sent"), say("col_answered"), say("col_response_rate"), say("col_csat"), say("col_ces"),
                   say("col_low")]
        for key, figures in groups:
            table = Table(f"csat_{key}", say(key), ["", *columns], bar_column=4)
            for name, f in figures:
                shown = self._title(name, me.lang) if key == "by_article" and name != "-" else name
                table.rows.append(Row(
                    [shown, str(f.sent), str(f.answered), _pct(f.response_rate), _pct(f.csat),
                     "—" if f.ces is None else f"{f.ces:.2f}", str(f.low_scores)],
                    share=f.csat,
                ))
            tables.append(table)
        return tables

    async def _self_service(self, me: StaffMember, since: float, until: float, say: Callable[..., str]) -> Table:
        overall, by_article = resolution_by_article(await self.answers.answers(since, until))
        table = Table(
            "self_service", say("self_service_title", rate=_pct(overall.rate)),
            ["", say("col_answers"), say("col_resolved"), say("col_confirmed"), say("col_not_helpful"),
             say("col_handed_off")],
            bar_column=2, css="report selfservice", note=say("self_service_note"),
        )
        rows = [(say("overall"), overall)] + [
            (self._title(article_id, me.lang), figures)
            for article_id, figures in sorted(by_article.items(), key=lambda item: -item[1].answers)[:_ARTICLES]
        ]
        for name, f in rows:
            table.rows.append(Row([name, str(f.answers), _pct(f.rate), _pct(f.confirmed_rate), str(f.not_helpful),
                                   str(f.handed_off)], share=f.rate))
        return table

    def _desk_tables(self, me: StaffMember, days: int, tickets: list[Ticket], say: Callable[..., str]) -> list[Table]:
        report = ticket_report(tickets)
        lang = me.lang

        def duration(values: list[float], share: float) -> str:
            value = percentile(values, share)
            return "—" if value is None else format_duration(value, self.agent_texts, lang)

        def link(**where: str) -> str:
            return f"{ROOT}/tickets?" + urlencode({"days": days, **where})

        opened = max(report.opened, 1)
        reasons = Table("handoff_reasons", say("handoffs_title", count=report.opened),
                        [say("col_reason"), say("col_tickets"), "%"], bar_column=2, css="desk reasons")
        for reason, count in report.by_reason.most_common():
            reasons.rows.append(Row([self.agent_texts.get(lang, f"reason_{reason}"), str(count),
                                     _pct(count / opened)], share=count / opened, link=link(reason=reason)))
        channels = Table("handoff_channels", say("by_channel"), [say("col_channel"), say("col_tickets"), "%"],
                         bar_column=2, css="desk channels")
        for channel, count in report.by_channel.most_common():
            channels.rows.append(Row([channel, str(count), _pct(count / opened)], share=count / opened,
                                     link=link(channel=channel)))
        speed = Table("agent_speed", say("speed_title"),
                      [say("col_agent"), say("col_closed"), f"{say('col_first_response')} p50", "p90",
                       f"{say('col_handling')} p50", "p90"], css="desk speed")
        for name, agent in sorted(report.agents.items()):
            speed.rows.append(Row([name, str(agent.closed), duration(agent.first_response, 0.5),
                                   duration(agent.first_response, 0.9), duration(agent.handling, 0.5),
                                   duration(agent.handling, 0.9)], link=link(agent=name)))
        return [reasons, channels, speed]

    # ------------------------------------------------------------------ pages

    async def _page(self, request: web.Request) -> web.StreamResponse:
        async def handle(request: web.Request) -> web.StreamResponse:
            me = await self.console.signed_in(request, role="supervisor")
            days = _days(request)
            return self.console.page(
                "reports.html", me, days=days, tables=await self.tables(me, days),
                waiting_count=await self.desk.queue.length(),
                longest=format_duration(await self.desk.queue.longest_wait(), self.agent_texts, me.lang),
            )
        return await self.console.guarded(request, handle)

    async def _csv(self, request: web.Request) -> web.StreamResponse:
        async def handle(request: web.Request) -> web.StreamResponse:
            me = await self.console.signed_in(request, role="supervisor")
            days = _days(request)
            name = request.query.get("table", "")
            if name:
                table = next((table for table in await self.tables(me, days) if table.key == name), None)
                if table is None:
                    raise web.HTTPNotFound()
                body, filename = table.csv(), f"zabota-{name}-{days}d.csv"
            else:
                until = time.time()
                body = export_csv(await self.surveys.surveys(until - days * 86400, until))
                filename = f"zabota-surveys-{days}d.csv"
            return web.Response(text=body, content_type="text/csv", charset="utf-8", headers={
                "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store",
            })
        return await self.console.guarded(request, handle)

    async def _tickets(self, request: web.Request) -> web.StreamResponse:
        """The tickets behind a figure: those of the period with a reason, a channel or an agent."""
        async def handle(request: web.Request) -> web.StreamResponse:
            me = await self.console.signed_in(request, role="supervisor")
            days = _days(request)
            where = {key: request.query[key][:100] for key in ("reason", "channel", "agent") if request.query.get(key)}
            tickets = [
                ticket for ticket in await self.desk.tickets_since(time.time() - days * 86400)
                if ticket.reason.value == where.get("reason", ticket.reason.value)
                and ticket.channel == where.get("channel", ticket.channel)
                and ticket.agent_name == where.get("agent", ticket.agent_name)
            ]
            what = ", ".join(
                self.agent_texts.get(me.lang, f"reason_{value}") if key == "reason" else value
                for key, value in where.items()
            )
            return self.console.page(
                "report_tickets.html", me, days=days, what=what, count=len(tickets),
                tickets=self.console.ticket_rows(tickets[:500], me),
            )
        return await self.console.guarded(request, handle)


def _days(request: web.Request) -> int:
    raw = request.query.get("days", "30")
    return min(365, max(1, int(raw))) if raw.isdigit() else 30

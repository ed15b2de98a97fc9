"""The agents' and supervisors' web workplace (``/console``): the same tickets as in Telegram, in a browser.

Sign-in fits Telegram: staff send ``/console`` to the bot and get a one-time link that works for ten minutes. The
link opens a page whose button signs in (a link preview fetching the page signs nobody in); the token is spent
on the first use, and the browser gets a session cookie (HttpOnly, SameSite=Strict, Secure behind HTTPS) kept in
Redis for 12 hours. Roles come from the same settings and ``/agents`` as in Telegram, read again on each request:
every page checks them (reports: supervisors and admins). Every change is a POST carrying the session's CSRF
token, from the console's own origin.

Pages are rendered on the server with autoescaping (customers' words, names, file names are always text); a
small script keeps the live part of a page fresh: ``/console/events`` tells it when what it shows has changed,
whichever process changed it (the state is in Redis). Everything an agent does here goes through the same
workspace as in Telegram, so both show the same state at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import redis.asyncio as aioredis
from aiohttp import web

from bot.core.redis_values import optional_text, text_map
from bot.core.texts import Texts
from bot.web import keys
from bot.web.files import UnacceptableFile, WebFiles
from bot.web.knowledge import KnowledgePage
from bot.web.reports import ReportsPage
from bot.web.staff import StaffMember
from bot.web.team import TeamPage
from handoff import HandoffDesk, Outcome, Ticket, TicketState
from handoff import keys as handoff_keys
from handoff.durations import format_duration
from handoff.relay import Relay
from handoff.roster import AgentDirectory
from handoff.search import ConversationSearch
from handoff.workspace import AgentWorkspace
from kb_index import KnowledgeBase
from kb_index.errors import KbError
from surveys.service import SurveyService

__all__ = ["Console", "StaffMember"]

ROOT = "/console"
_COOKIE = "zabota_console"
_SIGNIN_TTL = 600
_SESSION_TTL = 12 * 3600
_VIEWING_SECONDS = 15.0  # a ticket page's heartbeat comes every 5 s (static/console.js)
_RANKS = {"agent": 0, "supervisor": 1, "admin": 2}
_TYPING_SECONDS = 6.0  # "typing" is sent at most every 2 s while the agent types
_POLL_SECONDS = 0.5
_ROWS = 200  # the most urgent first; the summary line says how many wait in all


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Console:
    def __init__(
        self,
        redis: aioredis.Redis,
        desk: HandoffDesk,
        workspace: AgentWorkspace,
        relay: Relay,
        directory: AgentDirectory,
        surveys: SurveyService,
        *,
        public_url: str,
        default_lang: str = "ru",
        telegram_token: str = "",
        files: WebFiles | None = None,
        knowledge: KnowledgePage | None = None,
        search: ConversationSearch | None = None,
        reports: ReportsPage | None = None,
        kb: KnowledgeBase | None = None,
        team: TeamPage | None = None,
    ) -> None:
        """``telegram_token``: the bot's token, which signs what the Telegram Login Widget sends (no token: the
        widget's sign-in is refused; the one-time links still work)."""
        self._redis = redis
        self.desk = desk
        self.workspace = workspace
        self.relay = relay
        self.directory = directory
        self.surveys = surveys
        self.public_url = public_url.rstrip("/")
        self.texts = Texts.load(Path(str(resources.files("bot.web").joinpath("locales"))), default_lang)
        self.agent_texts = workspace.texts
        self.files = files
        self.knowledge = knowledge
        self.search = search
        self.reports = reports
        self.kb = kb
        self.team = team
        self._closing = asyncio.Event()
        self._telegram_secret = hashlib.sha256(telegram_token.encode()).digest() if telegram_token else b""
        self.telegram_login_bot = ""  # the bot's @username: set where it is known, shows the Login Widget
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("bot.web", "templates"), autoescape=True, undefined=jinja2.StrictUndefined
        )

    # ------------------------------------------------------------------ sign-in links (for the bot's /console)

    async def sign_in_link(self, user_id: int) -> str:
        """A one-time link that signs this staff member in, valid for ten minutes."""
        token = secrets.token_urlsafe(24)
        await self._redis.set(keys.signin(token), str(user_id), ex=_SIGNIN_TTL)
        return f"{self.public_url}{ROOT}/signin?t={token}"

    # ------------------------------------------------------------------ the aiohttp routes

    def register(self, app: web.Application) -> None:
        app.router.add_get(ROOT, self._inbox)
        app.router.add_get(ROOT + "/", self._inbox)
        app.router.add_get(ROOT + "/signin", self._signin_page)
        app.router.add_post(ROOT + "/signin", self._signin)
        app.router.add_post(ROOT + "/signout", self._signout)
        app.router.add_post(ROOT + "/shift", self._shift)
        app.router.add_get(ROOT + "/login", self._login_page)
        app.router.add_get(ROOT + "/telegram", self._telegram_login)
        app.router.add_get(ROOT + "/events", self._events)
        app.router.add_get(ROOT + "/t/{ticket}", self._ticket)
        app.router.add_post(ROOT + "/t/{ticket}/presence", self._presence)
        app.router.add_post(ROOT + "/t/{ticket}/{action}", self._act)
        app.router.add_get(ROOT + "/static/{name}", self._static)
        app.router.add_get(ROOT + "/file/{file}", self._file)
        app.on_shutdown.append(self._shutdown)
        if self.knowledge is not None:
            self.knowledge.register(app, self)
        if self.reports is not None:
            self.reports.register(app, self)
        if self.team is not None:
            self.team.register(app, self)

    async def _shutdown(self, app: web.Application) -> None:
        """Open streams end at once (the browser reconnects to another process), not after a shutdown timeout."""
        self._closing.set()

    # ------------------------------------------------------------------ rendering

    def _t(self, lang: str) -> Any:
        def t(key: str, **params: object) -> str:
            return self.texts.get(lang, key, **params)
        return t

    def _page(self, template: str, lang: str, *, live_only: bool = False, status: int = 200, **context: Any) -> web.Response:
        page = self._templates.get_template(template)
        values = {"lang": lang, "t": self._t(lang), "root": ROOT, "me": None, "flash": "", "events_url": "", **context}
        if live_only:
            body = "".join(page.blocks["live"](page.new_context(values)))
        else:
            body = page.render(values)
        return web.Response(text=body, content_type="text/html", status=status, headers={
            "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            "Cache-Control": "no-store",
            "Referrer-Policy": "same-origin",  # no-referrer would make the browser send "Origin: null" on our own forms
            "X-Content-Type-Options": "nosniff",
        })

    def page(self, template: str, me: StaffMember, **context: Any) -> web.Response:
        """A page of the workplace for ``me``, in his language (for the parts that live in other modules)."""
        return self._page(template, me.lang, me=me, **context)

    root = ROOT

    @staticmethod
    def refused(status: int, key: str) -> Exception:
        """What a handler raises to answer with a short page (``key``: its words) and ``status``."""
        return _Refused(status, key)

    def _message(self, lang: str, key: str, status: int, me: StaffMember | None = None) -> web.Response:
        return self._page("message.html", lang, status=status, message=self.texts.get(lang, key), me=me)

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ("console.js", "console.css"):
            raise web.HTTPNotFound()
        body = resources.files("bot.web").joinpath(f"static/{name}").read_bytes()
        kind = "application/javascript" if name.endswith(".js") else "text/css"
        return web.Response(body=body, content_type=kind, charset="utf-8", headers={"Cache-Control": "max-age=300"})

    # ------------------------------------------------------------------ who is asking

    def _secure(self, request: web.Request) -> bool:
        return request.secure or self.public_url.startswith("https://")

    async def _role(self, user_id: int) -> str | None:
        if self.directory.is_admin(user_id):
            return "admin"
        if await self.directory.is_supervisor(user_id):
            return "supervisor"
        if await self.directory.is_agent(user_id):
            return "agent"
        return None

    async def _me(self, request: web.Request) -> StaffMember | None:
        session_id = request.cookies.get(_COOKIE, "")
        if not session_id:
            return None
        session = text_map(await self._redis.hgetall(keys.session(session_id)))
        if not session:
            return None
        user_id = int(session["user"])
        role = await self._role(user_id)  # removed from /agents: out at once
        if role is None:
            return None
        lang = await self.workspace.agent_lang(user_id)
        return StaffMember(
            user_id, await self.workspace.display_name(user_id), role, session["csrf"], lang,
            on_shift=await self.desk.shifts.is_on(user_id),
        )

    async def signed_in(self, request: web.Request, *, role: str = "agent") -> StaffMember:
        """The signed-in member of staff, refused unless he holds ``role`` or a higher one."""
        me = await self._me(request)
        if me is None:
            raise _Refused(401, "no_session")
        if _RANKS[me.role] < _RANKS[role]:
            raise _Refused(403, "not_allowed")
        return me

    async def checked_post(self, request: web.Request, *, role: str = "agent") -> tuple[StaffMember, dict[str, str]]:
        me = await self.signed_in(request, role=role)
        origin = request.headers.get("Origin")
        if origin and origin not in (f"{request.scheme}://{request.host}", self.public_url):
            raise _Refused(403, "not_allowed")
        form = {key: str(value) for key, value in (await request.post()).items()}
        if not hmac.compare_digest(form.get("csrf", ""), me.csrf):
            raise _Refused(403, "not_allowed")
        return me, form

    async def guarded(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except _Refused as refused:
            lang = self.texts.default_lang
            return self._message(lang, refused.message, refused.status)

    # ------------------------------------------------------------------ sign-in, sign-out

    async def _signin_page(self, request: web.Request) -> web.Response:
        """The link's page: a button, so that a link preview or a prefetch spends nothing."""
        return self._page("signin.html", self.texts.default_lang, token=request.query.get("t", ""))

    async def _signin(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = str(form.get("t", ""))
        raw = optional_text(await self._redis.getdel(keys.signin(token))) if token else None
        lang = self.texts.default_lang
        if raw is None:
            return self._message(lang, "signin_used", 403)
        return await self._start_session(request, int(raw))

    async def _login_page(self, request: web.Request) -> web.Response:
        """Where a deployment with a domain signs staff in with the Telegram Login Widget (or by /console)."""
        response = self._page("login.html", self.texts.default_lang, bot=self.telegram_login_bot,
                              auth_url=f"{self.public_url}{ROOT}/telegram")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self' https://telegram.org; frame-src https://oauth.telegram.org; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        )
        return response

    async def _telegram_login(self, request: web.Request) -> web.Response:
        """The Login Widget's redirect: its fields signed with the bot token (HMAC-SHA256 keyed by the token's
        SHA-256), at most a day old; then the same session as a one-time link gives, and the fields leave the
        address bar with the redirect."""
        fields = {key: value for key, value in request.query.items()}
        signature = fields.pop("hash", "")
        checked = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
        expected = hmac.new(self._telegram_secret, checked.encode(), hashlib.sha256).hexdigest()
        lang = self.texts.default_lang
        fresh = fields.get("auth_date", "").isdigit() and time.time() - int(fields["auth_date"]) < 86400
        if not self._telegram_secret or not hmac.compare_digest(expected, signature) or not fresh:
            return self._message(lang, "signin_used", 403)
        if not fields.get("id", "").isdigit():
            return self._message(lang, "not_allowed", 403)
        return await self._start_session(request, int(fields["id"]))

    async def _start_session(self, request: web.Request, user_id: int) -> web.Response:
        lang = self.texts.default_lang
        if await self._role(user_id) is None:
            return self._message(lang, "not_allowed", 403)
        session_id = secrets.token_urlsafe(32)
        await self._redis.hset(keys.session(session_id), mapping={
            "user": str(user_id), "csrf": secrets.token_urlsafe(24), "at": str(time.time()),
        })
        await self._redis.expire(keys.session(session_id), _SESSION_TTL)
        response = web.Response(status=303, headers={"Location": ROOT, "Cache-Control": "no-store"})
        response.set_cookie(_COOKIE, session_id, max_age=_SESSION_TTL, path=ROOT, httponly=True,
                            secure=self._secure(request), samesite="Strict")
        return response

    async def _signout(self, request: web.Request) -> web.StreamResponse:
        async def handle(request: web.Request) -> web.StreamResponse:
            me, _ = await self.checked_post(request)
            await self._redis.delete(keys.session(request.cookies.get(_COOKIE, "")))
            response = self._message(me.lang, "signed_out", 200)
            response.del_cookie(_COOKIE, path=ROOT)
            return response
        return await self.guarded(request, handle)

    async def _shift(self, request: web.Request) -> web.StreamResponse:
        """On or off shift, as /online and /offline in Telegram: going off hands one's tickets back."""
        async def handle(request: web.Request) -> web.StreamResponse:
            me, form = await self.checked_post(request)
            flash = ""
            if form.get("on") == "1":
                await self.desk.shifts.begin(me.user_id)
            elif me.on_shift:
                released = await self.workspace.go_offline(me.user_id)
                flash = str(self._t(me.lang)("off_shift_released", count=len(released))) if released else ""
            raise web.HTTPSeeOther(ROOT + (f"?m={_quote(flash)}" if flash else ""))
        return await self.guarded(request, handle)

    # ------------------------------------------------------------------ the inbox

    def _state_text(self, ticket: Ticket, lang: str) -> str:
        t = self._t(lang)
        if ticket.state is TicketState.WAITING:
            return str(t("state_waiting"))
        if ticket.state is TicketState.ASSIGNED:
            return str(t("state_assigned", agent=ticket.agent_name or ticket.agent_id))
        outcome = self.agent_texts.get(lang, f"outcome_{ticket.outcome}") if ticket.outcome else "—"
        return str(t("state_closed", outcome=outcome))

    async def _open_tickets(self) -> list[Ticket]:
        held: list[Ticket] = []
        for agent_id in sorted(set(await self.directory.agents()) | set(await self.desk.shifts.on_shift())):
            held += await self.desk.agent_tickets(agent_id)
        return await self.desk.waiting(_ROWS) + sorted(held, key=lambda t: t.waiting_since)

    async def _closed_tickets(self, query: str, limit: int = 100) -> list[Ticket]:
        """The latest closed tickets; with ``query``, those whose number, customer or words match it (through
        the search index where there is one; otherwise among the latest 5 000)."""
        if query and self.search is not None:
            found_ids = await self.search.search(query, limit)
            return [t for t in await self.desk.get_many(found_ids) if t.state is TicketState.CLOSED]
        words = [w for w in query.lower().split() if w]
        newest = int(await self._redis.get(handoff_keys.SEQUENCE) or 0)
        found: list[Ticket] = []
        for top in range(newest, max(0, newest - 5000), -_ROWS):  # the latest 5 000 tickets, newest first
            batch = await self.desk.get_many([f"T{n}" for n in range(top, max(0, top - _ROWS), -1)])
            for ticket in batch:
                if ticket.state is not TicketState.CLOSED:
                    continue
                haystack = f"{ticket.id} {ticket.customer_name} {ticket.question}".lower()
                if all(word in haystack for word in words):
                    found.append(ticket)
            if len(found) >= limit:
                break
        return found[:limit]

    def ticket_rows(self, tickets: list[Ticket], me: StaffMember) -> list[dict[str, Any]]:
        """Tickets as the inbox's rows show them (also the reports' lists of tickets behind a figure)."""
        now = time.time()
        return [{
            "id": ticket.id, "name": ticket.customer_name, "lang": ticket.lang, "channel": ticket.channel,
            "waited": format_duration(((ticket.taken_at or ticket.closed_at or now) - ticket.waiting_since)
                                      if ticket.waiting_since else 0, self.agent_texts, me.lang),
            "reason": self.agent_texts.get(me.lang, f"reason_{ticket.reason.value}"),
            "frustrated": bool(ticket.frustration), "urgent": ticket.priority > 0,
            "state": ticket.state.value, "state_text": self._state_text(ticket, me.lang),
            "unread": ticket.unread if ticket.is_open else 0,
        } for ticket in tickets]

    async def _inbox(self, request: web.Request) -> web.StreamResponse:
        async def handle(request: web.Request) -> web.StreamResponse:
            me = await self.signed_in(request)
            view = request.query.get("view", "waiting")
            query = request.query.get("q", "").strip()[:100]
            if view == "mine":
                tickets = await self.desk.agent_tickets(me.user_id)
            elif view == "open":
                tickets = await self._open_tickets()
            elif view == "closed":
                tickets = await self._closed_tickets(query)
            else:
                view, tickets = "waiting", await self.desk.waiting(_ROWS)
            rows = self.ticket_rows(tickets, me)
            fingerprint = await self._fingerprint(None)
            return self._page(
                "inbox.html", me.lang, live_only=request.headers.get("X-Live") == "1", me=me, view=view,
                query=query, tickets=rows, waiting_count=await self.desk.queue.length(),
                flash=request.query.get("m", "")[:300],
                longest=format_duration(await self.desk.queue.longest_wait(), self.agent_texts, me.lang),
                events_url=f"{ROOT}/events?since={fingerprint}",
            )
        return await self.guarded(request, handle)

    # ------------------------------------------------------------------ one ticket

    async def _ticket(self, request: web.Request) -> web.StreamResponse:
        async def handle(request: web.Request) -> web.StreamResponse:
            me = await self.signed_in(request)
            ticket = await self.desk.get(request.match_info["ticket"])
            if ticket is None:
                raise web.HTTPNotFound()
            await self._redis.hset(keys.viewing(ticket.id), str(me.user_id), str(time.time()))
            await self._redis.expire(keys.viewing(ticket.id), 3600)
            transcript = []
            turns = await self.desk.context(ticket.id)
            for turn in turns:
                if turn.role not in ("customer", "bot", "agent") or not turn.text:
                    continue
                if turn.kind in ("decision", "feedback"):
                    continue
                if turn.kind == "media":
                    words = f"[{turn.data.get('media', 'media')}] {turn.text}"
                elif turn.kind == "article":  # an article an agent sent
                    words = f"📄 {turn.data.get('title') or turn.text}"
                else:
                    words = turn.text
                transcript.append({"role": turn.role, "who": self.agent_texts.get(me.lang, f"role_{turn.role}"),
                                   "text": words, "file_id": turn.data.get("file_id", ""),
                                   "file": turn.data.get("file", "")})
            notes = [f"{await self.directory.roster.display_name(note.agent_id)}: {note.text}"
                     for note in await self.desk.notes.of(ticket.id)]
            earlier = await self.desk.customer_history(ticket.chat_id, exclude=ticket.id)
            mine = ticket.state is TicketState.ASSIGNED and ticket.agent_id == me.user_id
            if mine and ticket.unread:
                await self.desk.read(ticket.id)
            rated = [survey for survey in await self.surveys.surveys(ticket.closed_at - 5, ticket.closed_at + 3600)
                     if survey.ticket_id == ticket.id] if ticket.closed_at else []
            kb_query = request.query.get("kb", "").strip()[:200]
            found = []
            if mine and kb_query and self.kb is not None:
                result = await self.kb.search_async(kb_query, lang=ticket.lang, limit=5)
                found = [(match.article_id, match.title) for match in result.matches]
            fingerprint = await self._fingerprint(ticket.id)
            return self._page(
                "ticket.html", me.lang, live_only=request.headers.get("X-Live") == "1", me=me, ticket=ticket,
                reason=self.agent_texts.get(me.lang, f"reason_{ticket.reason.value}"),
                state_text=self._state_text(ticket, me.lang), transcript=transcript, notes=notes,
                tried=self.workspace.card.tried(turns, ticket.lang, me.lang), rated=rated,
                can_assign=me.supervisor and ticket.is_open and not mine,
                earlier=earlier, viewers=await self._present(keys.viewing(ticket.id), me.user_id, _VIEWING_SECONDS),
                typing=await self._present(keys.typing(ticket.id), me.user_id, _TYPING_SECONDS),
                can_take=ticket.state is TicketState.WAITING, mine=mine, kb_query=kb_query, found=found,
                can_send_files=self.files is not None,
                is_open=ticket.is_open, reply_id=secrets.token_hex(8), flash=request.query.get("m", "")[:300],
                canned=self.workspace.canned_names(), colleagues=await self._colleagues(me.user_id),
                events_url=f"{ROOT}/events?ticket={ticket.id}&since={fingerprint}",
            )
        return await self.guarded(request, handle)

    async def _colleagues(self, me: int) -> list[tuple[int, str]]:
        """Agents a ticket can be passed to: everyone but oneself, on shift first."""
        online = await self.desk.shifts.on_shift()
        agents = [agent for agent in await self.directory.agents() if agent != me]
        agents.sort(key=lambda agent: (agent not in online, agent))
        return [(agent, await self.workspace.display_name(agent)) for agent in agents]

    async def _file(self, request: web.Request) -> web.StreamResponse:
        """A file a customer sent from the widget, for staff; always a download."""
        async def handle(request: web.Request) -> web.StreamResponse:
            await self.signed_in(request)
            stored = await self.files.get(request.match_info["file"]) if self.files is not None else None
            if stored is None:
                raise web.HTTPNotFound()
            return stored.response()
        return await self.guarded(request, handle)

    async def _present(self, key: str, me: int, seconds: float) -> list[str]:
        """Who else (not ``me``) is on a ticket's page, or typing on it, as of the last ``seconds``."""
        names = []
        for user_id in _recent(text_map(await self._redis.hgetall(key)), seconds):
            if user_id != me:
                names.append(await self.workspace.display_name(user_id))
        return sorted(names)

    async def _presence(self, request: web.Request) -> web.StreamResponse:
        """The ticket page's heartbeat (every few seconds while it is open) and its "typing" signal."""
        async def handle(request: web.Request) -> web.StreamResponse:
            me, form = await self.checked_post(request)
            ticket_id = request.match_info["ticket"]
            if await self.desk.get(ticket_id) is None:
                raise web.HTTPNotFound()
            now = str(time.time())
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hset(keys.viewing(ticket_id), str(me.user_id), now)
                pipe.expire(keys.viewing(ticket_id), 3600)
                if form.get("typing") == "1":
                    pipe.hset(keys.typing(ticket_id), str(me.user_id), now)
                    pipe.expire(keys.typing(ticket_id), 3600)
                await pipe.execute()
            return web.Response(status=204)
        return await self.guarded(request, handle)

    async def _act(self, request: web.Request) -> web.StreamResponse:
        async def handle(request: web.Request) -> web.StreamResponse:
            me, form = await self.checked_post(request)
            ticket = await self.desk.get(request.match_info["ticket"])
            if ticket is None:
                raise web.HTTPNotFound()
            action = request.match_info["action"]
            if action == "file":
                flash = await self._send_file(me, ticket, request, form)
            else:
                flash = await self._do(me, ticket, action, form)
            target = f"{ROOT}/t/{ticket.id}" + (f"?m={_quote(flash)}" if flash else "")
            raise web.HTTPSeeOther(target)
        return await self.guarded(request, handle)

    async def _do(self, me: StaffMember, ticket: Ticket, action: str, form: dict[str, str]) -> str:
        t = self._t(me.lang)
        mine = ticket.state is TicketState.ASSIGNED and ticket.agent_id == me.user_id
        if action == "take":
            result = await self.workspace.take(me.user_id, ticket.id)
            if result is None or result.ok:
                return ""
            if result.reason == "taken":
                return str(t("taken_by_other", ticket=ticket.id, agent=result.holder_name or result.holder_id))
            if result.reason == "full":
                return str(t("too_many", count=self.desk.max_tickets_per_agent))
            return str(t("closed_already", ticket=ticket.id))
        if action == "assign" and me.supervisor and form.get("to", "").isdigit():
            return await self._assign(me, ticket, int(form["to"]))
        if action == "note" and ticket.is_open:
            words = form.get("text", "").strip()[:2000]
            if words:
                await self.desk.notes.add(ticket.id, me.user_id, words)
            return ""
        if not mine:
            return str(t("not_yours"))
        if action == "reply":
            words = form.get("text", "").strip()[:4000]
            if words:
                await self.relay.agent_text(ticket, words, source=f"console:{me.user_id}:{form.get('id', '')}")
            return ""
        if action == "close":
            outcome = Outcome.UNRESOLVED if form.get("outcome") == "unresolved" else Outcome.RESOLVED
            await self.workspace.close(me.user_id, ticket, outcome)
            return ""
        if action == "release":
            await self.workspace.release(me.user_id, ticket)
            return ""
        if action == "article" and self.kb is not None:
            try:
                article = self.kb.article(form.get("article", ""), ticket.lang)
            except KbError:
                return str(t("kb_gone"))
            await self.workspace.send_article(ticket, article)
            if ticket.question and self.kb.learn(article.id, ticket.question, lang=ticket.lang,
                                                 source=f"agent:{me.user_id}"):
                return str(t("kb_sent_learned", title=article.title, question=ticket.question[:200]))
            return str(t("kb_sent", title=article.title))
        if action == "canned":
            await self.workspace.send_canned(me.user_id, ticket, form.get("name", ""))
            return ""
        if action == "transfer" and form.get("to", "").isdigit():
            to_agent = int(form["to"])
            if to_agent != me.user_id and await self.directory.is_agent(to_agent):
                await self.workspace.transfer(me.user_id, ticket, to_agent)
            return ""
        raise web.HTTPNotFound()

    async def _assign(self, me: StaffMember, ticket: Ticket, to_agent: int) -> str:
        """A supervisor gives a waiting ticket to an agent, or moves a held one from its holder to another."""
        t = self._t(me.lang)
        if not await self.directory.is_agent(to_agent):
            raise web.HTTPNotFound()
        name = await self.workspace.display_name(to_agent)
        if ticket.state is TicketState.WAITING:
            result = await self.desk.take(ticket.id, to_agent, name)
            if not result.ok or result.ticket is None:
                key = "too_many_for" if result.reason == "full" else "taken_by_other"
                return str(t(key, ticket=ticket.id, agent=result.holder_name or name,
                             count=self.desk.max_tickets_per_agent))
            await self.workspace.took(to_agent, result.ticket)
        elif ticket.state is TicketState.ASSIGNED and ticket.agent_id != to_agent:
            await self.workspace.transfer(ticket.agent_id, ticket, to_agent)
        return str(t("assigned_to", ticket=ticket.id, agent=name))

    async def _send_file(self, me: StaffMember, ticket: Ticket, request: web.Request, form: dict[str, str]) -> str:
        """A file or photo from the agent's computer to his customer, checked as a visitor's upload is."""
        t = self._t(me.lang)
        if not (ticket.state is TicketState.ASSIGNED and ticket.agent_id == me.user_id):
            return str(t("not_yours"))
        upload = (await request.post()).get("file")
        if self.files is None or not isinstance(upload, web.FileField):
            return ""
        try:
            stored = await self.files.save(ticket.chat_id, upload.filename or "", upload.file.read())
        except UnacceptableFile as exc:
            key = "file_too_large" if str(exc) == "too_large" else "file_type"
            return str(t(key, limit=f"{self.files.max_bytes / 1e6:g}"))
        caption = form.get("caption", "").strip()[:1000]
        await self.relay.agent_file(ticket, str(stored.path), stored.name, stored.kind, caption,
                                    source=f"console-file:{me.user_id}:{form.get('id', '')}", file_id=stored.id)
        return ""

    # ------------------------------------------------------------------ live updates

    async def _fingerprint(self, ticket_id: str | None) -> str:
        """What a page shows, in a few bytes: it changes whenever the page would."""
        parts: list[Any] = []
        if ticket_id is None:
            parts.append(await self._redis.zrange(handoff_keys.QUEUE, 0, _ROWS - 1))
            parts.append(await self._redis.zcard(handoff_keys.QUEUE))
            parts.append(sorted(text_map(await self._redis.hgetall(handoff_keys.STATS)).items()))
            for agent_id in sorted(set(await self.directory.agents()) | set(await self.desk.shifts.on_shift())):
                parts.append(sorted(await self._redis.smembers(handoff_keys.agent_tickets(agent_id))))
        else:
            ticket = await self.desk.get(ticket_id)
            parts.append(ticket.state.value if ticket else "")
            parts.append(ticket.agent_id if ticket else 0)
            parts.append(len(await self.desk.context(ticket_id)))
            parts.append(len(await self.desk.notes.of(ticket_id)))
            parts.append(_recent(text_map(await self._redis.hgetall(keys.viewing(ticket_id))), _VIEWING_SECONDS))
            parts.append(_recent(text_map(await self._redis.hgetall(keys.typing(ticket_id))), _TYPING_SECONDS))
        return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:16]

    async def _events(self, request: web.Request) -> web.StreamResponse:
        me = await self._me(request)
        if me is None:
            raise web.HTTPUnauthorized()
        ticket_id = request.query.get("ticket") or None
        knowledge = self.knowledge if request.query.get("knowledge") and me.role == "admin" else None
        last = request.query.get("since", "")
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no",
        })
        quiet = 0.0
        try:
            await response.prepare(request)
            while not self._closing.is_set():
                if ticket_id is not None:  # this agent is still looking at the ticket
                    await self._redis.hset(keys.viewing(ticket_id), str(me.user_id), str(time.time()))
                fingerprint = await (knowledge.fingerprint() if knowledge is not None else self._fingerprint(ticket_id))
                if fingerprint != last:
                    await response.write(f"data: {fingerprint}\n\n".encode())
                    last, quiet = fingerprint, 0.0
                elif quiet >= 15.0:
                    await response.write(b": keep-alive\n\n")
                    quiet = 0.0
                try:
                    await asyncio.wait_for(self._closing.wait(), _POLL_SECONDS)
                except TimeoutError:
                    quiet += _POLL_SECONDS
        except ConnectionResetError:
            pass  # the page was closed or left: nothing to tell it any more
        return response


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _recent(seen: dict[str, str], seconds: float) -> list[int]:
    """The user ids of a presence hash (user id -> when) seen in the last ``seconds``."""
    now = time.time()
    return sorted(int(user) for user, at in seen.items() if now - float(at) < seconds)

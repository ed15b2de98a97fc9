"""The website chat widget's side of the server: a visitor's session, his messages and taps, and the live stream
of what his widget shows. The same dialog core, knowledge base, hand-off queue and surveys as Telegram.

    GET  /widget.js          the widget (one line embeds it: ``<script src=".../widget.js" async></script>``)
    GET  /demo               a test page with the widget on it
    POST /api/session        {token?, lang?, user?: {id, name, hash}} -> {token, lang}: who the visitor is
    GET  /api/events         ?token=…  server-sent events: the chat from the start (or Last-Event-ID), then live
    POST /api/send           {token, id, text}: a visitor's message, handled once per widget id
    POST /api/tap            {token, message, data}: a tap on a button of message ``message``
    POST /api/human          {token}: "talk to a person"
    POST /api/upload         multipart: token, id, file, caption: a file from the visitor (``bot.web.files``)
    GET  /api/file/{id}      ?token=…  a file of this visitor's conversation, as a download

Every request but the static files names its visitor by his signed token (``bot.web.visitors``); a page on an
origin that is not allowed (WEB_ALLOWED_ORIGINS) is refused, and so are visitors and addresses that send faster
than the limits. A message is written to the chat and handled under a per-message key, so a retry after a lost
answer (or from a second tab) is not handled twice, and a process killed while handling it leaves the key to
expire and the widget's retry handles it then.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from bot.core.channels import number_in
from bot.core.dialog import CustomerDialog
from bot.core.ports import Action, Button, Customer, Reply
from bot.settings import WebSettings
from bot.web import keys
from bot.web.chats import WebChats, WebHub
from bot.web.files import UnacceptableFile, WebFiles
from bot.web.visitors import ForgedIdentity, Visitor, Visitors
from handoff import HandoffDesk
from handoff.customer import CustomerHandoff
from handoff.relay import Relay
from surveys.taps import SurveyTaps

__all__ = ["WidgetServer"]

log = logging.getLogger(__name__)

_HANDLING_SECONDS = 60  # a message whose handler died is handled again by the widget's retry after this
_KEEPALIVE_SECONDS = 15.0
_LANGS = ("ru", "uk", "en")


def _dialog_data(button: Button) -> str:
    """A dialog button's tap data in the widget: ``d:<action>:<search>:<index>`` (a survey's keeps its own)."""
    if button.callback:
        return button.callback
    action = button.action.value if button.action is not None else ""
    return f"d:{action}:{button.search_id}:{button.index}"


def _rows(reply: Reply) -> tuple[tuple[tuple[str, str], ...], ...]:
    return tuple(tuple((b.text, _dialog_data(b)) for b in row) for row in reply.buttons)


@dataclass
class _Refusal(Exception):
    status: int
    message: str


class WidgetServer:
    def __init__(
        self,
        redis: aioredis.Redis,
        settings: WebSettings,
        dialog: CustomerDialog,
        desk: HandoffDesk,
        relay: Relay,
        customer_handoff: CustomerHandoff,
        remember_sent: Callable[[str, int], Awaitable[None]],
        taps: SurveyTaps,
        chats: WebChats,
        files: WebFiles,
    ) -> None:
        self._redis = redis
        self.settings = settings
        self.dialog = dialog
        self.texts = dialog.texts
        self.desk = desk
        self.relay = relay
        self.customer_handoff = customer_handoff
        self.remember_sent = remember_sent  # a ticket's status, a survey: their message numbers, for edits
        self.taps = taps
        self.chats = chats
        self.files = files
        self.visitors = Visitors(redis, settings.secret.get_secret_value(), settings.identity_secret.get_secret_value())
        self.hub = WebHub(redis)
        self.public_url = settings.public_url.rstrip("/")
        self._closing = False

    async def ready(self) -> None:
        await self.visitors.ready()

    # ------------------------------------------------------------------ the aiohttp application

    def register(self, app: web.Application) -> None:
        app.router.add_get("/widget.js", self._widget_js)
        app.router.add_get("/demo", self._demo_page)
        for path, handler in (
            ("/api/session", self._session),
            ("/api/send", self._send),
            ("/api/tap", self._tap),
            ("/api/human", self._human),
            ("/api/upload", self._upload),
        ):
            app.router.add_post(path, handler)
            app.router.add_route("OPTIONS", path, self._preflight)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/file/{file}", self._file)
        app.middlewares.append(self._origin_check)
        app.on_response_prepare.append(self._cors_headers)
        app.on_shutdown.append(self._shutdown)

    async def _shutdown(self, app: web.Application) -> None:
        """Open streams end at once (the browser reconnects to another process), not after a shutdown timeout."""
        self._closing = True
        self.hub.wake_everyone()

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        self.register(app)
        return app

    # ------------------------------------------------------------------ origins (CORS)

    def _allowed(self, request: web.Request, origin: str) -> bool:
        allowed = self.settings.allowed_origins
        own = {f"{request.scheme}://{request.host}", self.public_url}
        return "*" in allowed or origin.rstrip("/") in allowed or origin in own

    @web.middleware
    async def _origin_check(self, request: web.Request, handler: Any) -> web.StreamResponse:
        origin = request.headers.get("Origin", "")
        if request.path.startswith("/api/") and origin and not self._allowed(request, origin):
            return web.json_response(
                {"error": f"this website ({origin}) may not use the chat: add it to WEB_ALLOWED_ORIGINS"}, status=403
            )
        try:
            response: web.StreamResponse = await handler(request)
        except _Refusal as refusal:
            response = web.json_response({"error": refusal.message}, status=refusal.status)
        return response

    async def _cors_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """On every answer to an allowed page, before its headers go out (the event stream's too)."""
        origin = request.headers.get("Origin", "")
        if origin and request.path.startswith("/api/") and self._allowed(request, origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"

    async def _preflight(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600",
        })

    # ------------------------------------------------------------------ static files

    async def _widget_js(self, request: web.Request) -> web.Response:
        body = resources.files("bot.web").joinpath("static/widget.js").read_bytes()
        return web.Response(body=body, content_type="application/javascript", charset="utf-8",
                            headers={"Cache-Control": "public, max-age=300", "ETag": hashlib.sha1(body).hexdigest()})

    async def _demo_page(self, request: web.Request) -> web.Response:
        lang = request.query.get("lang", "ru")
        lang = lang if lang in _LANGS else "ru"
        page = resources.files("bot.web").joinpath("static/demo.html").read_text("utf-8").replace("{lang}", lang)
        return web.Response(text=page, content_type="text/html", headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
        })

    # ------------------------------------------------------------------ requests

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Refusal(400, "the request body must be JSON") from exc
        if not isinstance(body, dict):
            raise _Refusal(400, "the request body must be a JSON object")
        return body

    async def _visitor(self, token: object) -> Visitor:
        chat_id = self.visitors.chat_of(token) if isinstance(token, str) else None
        if chat_id is None:
            raise _Refusal(401, "unknown visitor: start a new session (POST /api/session)")
        return await self.visitors.visitor(chat_id)

    def _customer(self, visitor: Visitor) -> Customer:
        name = visitor.name or self.texts.get(visitor.lang, "web_visitor", number=number_in(visitor.chat_id))
        return Customer(chat_id=visitor.chat_id, user_id=visitor.chat_id, name=name, language_code=visitor.lang or None)

    def _address(self, request: web.Request) -> str:
        if self.settings.trusted_proxy and request.headers.get("X-Forwarded-For"):
            return request.headers["X-Forwarded-For"].split(",")[0].strip()
        return request.remote or "?"

    async def _limit(self, request: web.Request, visitor: Visitor) -> None:
        """Messages, taps and hand-off requests a minute: per visitor, then per address."""
        if await self._over(f"v{visitor.chat_id}", self.settings.visitor_messages_per_minute):
            raise _Refusal(429, self.texts.get(await self._lang(visitor), "web_too_fast"))
        await self._limit_address(request, await self._lang(visitor))

    async def _limit_address(self, request: web.Request, lang: str) -> None:
        if await self._over(f"a{self._address(request)}", self.settings.address_messages_per_minute):
            raise _Refusal(429, self.texts.get(self.texts.lang(lang), "web_too_fast"))

    async def _over(self, who: str, limit: int) -> bool:
        """Over ``limit`` in the last minute, counted as a sliding window (this minute's count plus the share of the
        last minute's that is still within 60 s), so that nobody gets twice the limit across a minute's edge."""
        now = time.time()
        minute = int(now // 60)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(keys.rate(who, minute))
            pipe.expire(keys.rate(who, minute), 120)
            pipe.get(keys.rate(who, minute - 1))
            count, _, previous = await pipe.execute()
        return int(count) + int(previous or 0) * (1 - (now / 60 - minute)) > limit

    async def _lang(self, visitor: Visitor) -> str:
        state = await self.dialog.states.load(visitor.chat_id)
        return self.texts.lang(state.lang or self.texts.for_code(visitor.lang))

    async def _show(self, chat_id: int, replies: list[Reply]) -> None:
        for reply in replies:
            number = await self.chats.add_message(chat_id, "bot", reply.text, is_html=reply.html, buttons=_rows(reply))
            if reply.track:
                await self.remember_sent(reply.track, number)

    async def _session(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        lang = str(body.get("lang") or "")[:16]
        user = body.get("user")
        try:
            if isinstance(user, dict) and user.get("id"):
                visitor = await self.visitors.signed_in(
                    str(user["id"])[:128], str(user.get("hash", "")), str(user.get("name", "")), lang
                )
            else:
                chat_id = self.visitors.chat_of(body["token"]) if isinstance(body.get("token"), str) else None
                if chat_id is None:  # a new visitor: counted against his address, so nobody makes them by the million
                    await self._limit_address(request, lang)
                visitor = await (self.visitors.visitor(chat_id) if chat_id is not None else self.visitors.new(lang))
        except ForgedIdentity as exc:
            raise _Refusal(403, str(exc)) from exc
        if lang and lang != visitor.lang:
            await self.visitors.remember_language(visitor.chat_id, lang)
            visitor = await self.visitors.visitor(visitor.chat_id)
        if not await self.chats.events(visitor.chat_id, count=1):  # a new conversation: the greeting
            await self._show(visitor.chat_id, await self.dialog.start(self._customer(visitor)))
        return web.json_response({"token": visitor.token, "lang": await self._lang(visitor)})

    async def _send(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        visitor = await self._visitor(body.get("token"))
        words = str(body.get("text") or "").strip()
        client_id = str(body.get("id") or "")[:64]
        if not words or not client_id:
            raise _Refusal(400, "a message needs its text and the widget's id for it")
        limit = self.settings.max_message_chars
        if len(words) > limit:
            raise _Refusal(413, self.texts.get(await self._lang(visitor), "web_too_long", limit=limit))
        state = await self._redis.get(keys.sent(visitor.chat_id, client_id))
        if state == "done":
            return web.json_response({"ok": True, "repeated": True})
        await self._limit(request, visitor)
        if not await self._redis.set(keys.sent(visitor.chat_id, client_id), "handling", nx=True, ex=_HANDLING_SECONDS):
            raise _Refusal(409, "this message is being handled; try again in a moment")
        if state is None:  # not written by an earlier try that died while handling it
            await self.chats.add_message(visitor.chat_id, "visitor", words, client_id=client_id)
        await self._handle_text(visitor, words, client_id)
        await self._redis.set(keys.sent(visitor.chat_id, client_id), "done", ex=7 * 86400)
        return web.json_response({"ok": True})

    async def _handle_text(self, visitor: Visitor, words: str, client_id: str) -> None:
        chat_id = visitor.chat_id
        thanks = await self.taps.comment(chat_id, words)  # the comment he offered after a low score
        if thanks is not None:
            await self.chats.add_message(chat_id, "bot", thanks)
            return
        ticket = await self.desk.open_ticket_of(chat_id)
        if ticket is not None:  # with a person: to the agent
            followed = await self.customer_handoff.follow_language(ticket, words, visitor.lang or None)
            if followed.lang != ticket.lang:
                await self.dialog.remember_language(chat_id, followed.lang)
            await self.relay.customer_text(followed, words, source=f"web:{chat_id}:{client_id}")
            return
        await self._show(chat_id, await self.dialog.text(self._customer(visitor), words))

    async def _tap(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        visitor = await self._visitor(body.get("token"))
        data = str(body.get("data") or "")
        try:
            number = int(body.get("message") or 0)
        except (TypeError, ValueError) as exc:
            raise _Refusal(400, "message must be the number of the message the button is on") from exc
        await self._limit(request, visitor)
        if data not in await self.chats.buttons_of(visitor.chat_id, number):
            return web.json_response({"ok": False, "notice": self.texts.get(await self._lang(visitor), "expired")})
        chat_id = visitor.chat_id
        survey = await self.taps.tap(data, chat_id, visitor.lang or None)
        if survey is not None:
            if survey.message is not None:
                await self.chats.edit(chat_id, number, words=survey.message.text, buttons=survey.message.buttons)
            return web.json_response({"ok": True, "notice": survey.notice})
        await self.chats.edit(chat_id, number, buttons=())  # the choice is made: an old tap cannot be repeated
        kind, _, rest = data.partition(":")
        action_value, _, rest = rest.partition(":")
        search_id, _, index = rest.rpartition(":")
        try:
            action = Action(action_value)
        except ValueError:
            action = None
        if kind != "d" or action is None:
            raise _Refusal(400, "unknown button")
        if action is Action.CANCEL_WAIT:
            reply, _ = await self.customer_handoff.cancel(chat_id, search_id, await self._lang(visitor))
            await self._show(chat_id, [reply])
        else:
            index_number = int(index) if index.isdigit() else 0
            await self._show(chat_id, await self.dialog.button(self._customer(visitor), action, search_id, index_number))
        return web.json_response({"ok": True})

    async def _upload(self, request: web.Request) -> web.Response:
        """A file from the visitor: to his agent when a person has his question, else the bot's polite word."""
        if (request.content_length or 0) > self.files.max_bytes + 64 * 1024:
            raise _Refusal(413, self.texts.get(self.texts.default_lang, "web_file_too_large",
                                               limit=f"{self.files.max_bytes / 1e6:g}"))
        form = await request.post()
        visitor = await self._visitor(form.get("token"))
        upload = form.get("file")
        client_id = str(form.get("id") or "")[:64]
        caption = str(form.get("caption") or "").strip()[: self.settings.max_message_chars]
        if not isinstance(upload, web.FileField) or not client_id:
            raise _Refusal(400, "an upload needs its file and the widget's id for it")
        lang = await self._lang(visitor)
        if await self._redis.get(keys.sent(visitor.chat_id, client_id)) == "done":
            return web.json_response({"ok": True, "repeated": True})
        await self._limit(request, visitor)
        try:
            stored = await self.files.save(visitor.chat_id, upload.filename or "", upload.file.read())
        except UnacceptableFile as exc:
            key = "web_file_too_large" if str(exc) == "too_large" else "web_file_type"
            raise _Refusal(413 if key == "web_file_too_large" else 415,
                           self.texts.get(lang, key, limit=f"{self.files.max_bytes / 1e6:g}")) from exc
        if not await self._redis.set(keys.sent(visitor.chat_id, client_id), "handling", nx=True, ex=_HANDLING_SECONDS):
            raise _Refusal(409, "this file is being handled; try again in a moment")
        chat_id = visitor.chat_id
        await self.chats.add_message(chat_id, "visitor", caption, client_id=client_id, file=stored.to_event())
        ticket = await self.desk.open_ticket_of(chat_id)
        if ticket is not None:
            await self.relay.customer_file(ticket, str(stored.path), stored.name, stored.kind, caption,
                                           source=f"web:{chat_id}:{client_id}", file_id=stored.id)
        else:
            await self._show(chat_id, await self.dialog.media(self._customer(visitor), stored.kind, caption))
        await self._redis.set(keys.sent(chat_id, client_id), "done", ex=7 * 86400)
        return web.json_response({"ok": True})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        visitor = await self._visitor(request.query.get("token"))
        stored = await self.files.get(request.match_info["file"])
        if stored is None or stored.chat_id != visitor.chat_id:  # another visitor's file: as if there were none
            raise web.HTTPNotFound()
        return stored.response()

    async def _human(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        visitor = await self._visitor(body.get("token"))
        await self._limit(request, visitor)
        if await self.desk.open_ticket_of(visitor.chat_id) is None:
            await self._show(visitor.chat_id, await self.dialog.ask_for_person(self._customer(visitor), "widget"))
        return web.json_response({"ok": True})

    # ------------------------------------------------------------------ the live stream

    async def _events(self, request: web.Request) -> web.StreamResponse:
        visitor = await self._visitor(request.query.get("token"))
        after = request.headers.get("Last-Event-ID") or request.query.get("after") or "0-0"
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache, no-transform",
            "X-Accel-Buffering": "no",  # nginx: pass each event on at once
        })
        try:
            await self._stream(request, response, visitor.chat_id, after)
        except ConnectionResetError:
            pass  # the visitor closed the page or lost the connection; he resumes from Last-Event-ID
        return response

    async def _stream(self, request: web.Request, response: web.StreamResponse, chat_id: int, after: str) -> None:
        await response.prepare(request)
        with self.hub.listening(chat_id) as changed:
            while True:
                changed.clear()
                for event in await self.chats.events(chat_id, after):
                    payload = json.dumps(event.data, ensure_ascii=False)
                    await response.write(f"id: {event.id}\ndata: {payload}\n\n".encode())
                    after = event.id
                try:
                    await asyncio.wait_for(changed.wait(), _KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")  # also finds out that the visitor has gone
                if self._closing:
                    return

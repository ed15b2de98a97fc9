"""The web channel's one aiohttp application: the website widget (``/widget.js``, ``/api/*``, ``/demo``) and the
agents' workplace (``/console``), on WEB_HOST:WEB_PORT, behind the same reverse proxy."""

from __future__ import annotations

from aiohttp import web

from bot.web.console import Console
from bot.web.widget import WidgetServer

__all__ = ["web_app"]


def web_app(widget: WidgetServer | None, console: Console | None) -> web.Application:
    largest = widget.files.max_bytes if widget is not None else 0
    served = web.Application(client_max_size=largest + 256 * 1024)  # a visitor's file, and a little more
    if widget is not None:
        widget.register(served)
    if console is not None:
        console.register(served)

    async def home(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/console" if console is not None else "/demo")

    served.router.add_get("/", home)
    return served

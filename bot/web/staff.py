"""A signed-in member of staff, as every page of the workplace knows him, and what a page of the workplace (the
knowledge page, the reports) needs from the workplace it is part of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from bot.core.texts import Texts
from handoff import Ticket

__all__ = ["StaffMember", "Workplace"]


@dataclass(frozen=True)
class StaffMember:
    user_id: int
    name: str
    role: str  # agent | supervisor | admin
    csrf: str
    lang: str
    on_shift: bool = False  # /online in Telegram or "on shift" here: auto-assignment gives him tickets

    @property
    def supervisor(self) -> bool:
        return self.role in ("supervisor", "admin")


class Workplace(Protocol):
    """What a page needs from the workplace it is part of (``bot.web.console.Console``)."""

    root: str
    texts: Texts

    def page(self, template: str, me: StaffMember, **context: Any) -> web.Response: ...

    async def signed_in(self, request: web.Request, *, role: str = "agent") -> StaffMember: ...

    async def checked_post(self, request: web.Request, *, role: str = "agent") -> tuple[StaffMember, dict[str, str]]: ...

    async def guarded(self, request: web.Request, handler: Any) -> web.StreamResponse: ...

    def refused(self, status: int, key: str) -> Exception: ...

    def ticket_rows(self, tickets: list[Ticket], me: StaffMember) -> list[dict[str, Any]]: ...

"""The admins' team page of the workplace (``/console/team``): who works the desk, in which role, on shift or
not, with how many tickets; agents and supervisors added or removed as ``/agents`` does in the bot.

People named in the settings (HANDOFF_AGENT_IDS, HANDOFF_SUPERVISOR_IDS, HANDOFF_ADMIN_IDS) are shown but not
changed here; those added here (or with ``/agents``) are kept in Redis, for every process at once. Someone who is
no longer an agent hands his tickets back to the queue at once.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from bot.web.staff import Workplace
from handoff import HandoffDesk
from handoff.roster import AgentDirectory
from handoff.workspace import AgentWorkspace, TeamChange

__all__ = ["TeamPage"]

ROOT = "/console/team"


class TeamPage:
    def __init__(self, directory: AgentDirectory, desk: HandoffDesk, workspace: AgentWorkspace) -> None:
        self.directory = directory
        self.desk = desk
        self.workspace = workspace

    def register(self, app: web.Application, console: Workplace) -> None:
        self.console = console
        app.router.add_get(ROOT, self._page)
        app.router.add_post(ROOT, self._change)

    async def members(self) -> list[dict[str, object]]:
        roster = self.directory.roster
        added_agents, added_supervisors = await roster.added_agents(), await roster.added_supervisors()
        online = await self.desk.shifts.on_shift()
        people = set(await self.directory.agents()) | set(self.directory.admin_ids)
        rows = []
        for user_id in sorted(people):
            if self.directory.is_admin(user_id):
                role = "admin"
            elif await self.directory.is_supervisor(user_id):
                role = "supervisor"
            else:
                role = "agent"
            rows.append({
                "id": user_id, "name": await self.workspace.display_name(user_id), "role": role,
                "added_agent": user_id in added_agents, "added_supervisor": user_id in added_supervisors,
                "from_settings": user_id in self.directory.agent_ids | self.directory.supervisor_ids
                | self.directory.admin_ids,
                "on_shift": user_id in online, "tickets": len(await self.desk.agent_tickets(user_id)),
            })
        return rows

    async def _page(self, request: web.Request) -> web.StreamResponse:
        async def handle(request: web.Request) -> web.StreamResponse:
            me = await self.console.signed_in(request, role="admin")
            return self.console.page("team.html", me, members=await self.members(),
                                     flash=request.query.get("m", "")[:300])
        return await self.console.guarded(request, handle)

    async def _change(self, request: web.Request) -> web.StreamResponse:
        async def handle(request: web.Request) -> web.StreamResponse:
            me, form = await self.console.checked_post(request, role="admin")
            keys = {
                TeamChange.ADD_AGENT: "team_agent_added",
                TeamChange.REMOVE_AGENT: "team_agent_removed",
                TeamChange.ADD_SUPERVISOR: "team_supervisor_added",
                TeamChange.REMOVE_SUPERVISOR: "team_supervisor_removed",
            }
            raw = form.get("user", "").strip()
            if form.get("action") not in keys or not raw.isdigit():
                key, user_id = "team_usage", 0
            else:
                user_id, change = int(raw), TeamChange(form["action"])
                key = keys[change] if await self.workspace.change_team(change, user_id) else "team_unchanged"
            flash = self.console.texts.get(me.lang, key, user=user_id)
            raise web.HTTPSeeOther(f"{ROOT}?m={quote(flash)}")
        return await self.console.guarded(request, handle)

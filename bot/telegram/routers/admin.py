"""Admins' commands in their private chat: /reindex, /gaps, /agents; /stats for admins and supervisors."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import BufferedInputFile, LinkPreviewOptions, Message

from bot.core.gaps import GapLog
from bot.core.texts import Texts
from bot.settings import Settings
from handoff.roster import AgentDirectory
from handoff.workspace import AgentWorkspace, TeamChange
from kb_index import KbSourceError, KnowledgeBase
from kb_index.gaps import answered_now, group_gaps
from surveys import SurveyService, build_report, render_chart

__all__ = ["build_router"]


class IsAdmin(Filter):
    def __init__(self, supervisors_too: bool = False) -> None:
        self.supervisors_too = supervisors_too

    async def __call__(self, message: Message, directory: AgentDirectory) -> bool:
        user = message.from_user
        if user is None:
            return False
        return directory.is_admin(user.id) or (self.supervisors_too and await directory.is_supervisor(user.id))


class IsStaff(Filter):
    async def __call__(self, message: Message, directory: AgentDirectory) -> bool:
        return message.from_user is not None and await directory.is_staff(message.from_user.id)


async def console(
    message: Message, agent_texts: Texts, workspace: AgentWorkspace,
    console_link: Callable[[int], Awaitable[str]] | None = None,
) -> None:
    """/console: a one-time link that signs this staff member in to the web workplace (no preview: a preview
    would open the link)."""
    user = message.from_user
    assert user is not None
    await workspace.remember_agent(user.id, user.first_name, user.language_code)  # his name and language there
    lang = await workspace.agent_lang(user.id)
    if console_link is None:
        await message.answer(agent_texts.get(lang, "console_off"))
        return
    link = await console_link(message.from_user.id)
    await message.answer(agent_texts.get(lang, "console_link", link=link),
                         link_preview_options=LinkPreviewOptions(is_disabled=True))


def _lang(message: Message, texts: Texts) -> str:
    return texts.for_code(message.from_user.language_code if message.from_user else None)


def _days(command: CommandObject, default: int = 30) -> int:
    try:
        return max(1, min(365, int((command.args or "").split()[0])))
    except (ValueError, IndexError):
        return default


async def stats(message: Message, command: CommandObject, surveys: SurveyService, agent_texts: Texts) -> None:
    lang = _lang(message, agent_texts)
    days = _days(command)
    until = time.time()
    report = build_report(await surveys.surveys(until - days * 86400, until), until - days * 86400, until)
    overall = report.overall
    if not overall.sent:
        await message.answer(agent_texts.get(lang, "stats_empty", days=days))
        return
    png = await asyncio.to_thread(render_chart, report)
    caption = agent_texts.get(
        lang,
        "stats_caption",
        days=days,
        csat="-" if overall.csat is None else f"{100 * overall.csat:.0f}%",
        ces="-" if overall.ces is None else f"{overall.ces:.2f}",
        rate="-" if overall.response_rate is None else f"{100 * overall.response_rate:.0f}%",
        sent=overall.sent,
    )
    await message.answer_photo(BufferedInputFile(png, filename="stats.png"), caption=caption)


async def agents(
    message: Message, command: CommandObject, directory: AgentDirectory, workspace: AgentWorkspace, agent_texts: Texts
) -> None:
    lang = _lang(message, agent_texts)
    words = (command.args or "").split()
    actions = {
        "add": (TeamChange.ADD_AGENT, "agent_added"),
        "remove": (TeamChange.REMOVE_AGENT, "agent_removed"),
        "add-supervisor": (TeamChange.ADD_SUPERVISOR, "supervisor_added"),
        "remove-supervisor": (TeamChange.REMOVE_SUPERVISOR, "supervisor_removed"),
    }
    if len(words) == 2 and words[0] in actions and words[1].isdigit():
        change, key = actions[words[0]]
        changed = await workspace.change_team(change, int(words[1]))
        await message.answer(agent_texts.get(lang, key if changed else "agent_unchanged", agent=int(words[1])))
        return
    if words:
        await message.answer(agent_texts.get(lang, "agents_usage"))
        return

    def listed(ids: Any) -> str:
        return ", ".join(str(i) for i in sorted(ids)) or "—"

    await message.answer(
        agent_texts.get(
            lang,
            "agents_list",
            agents=listed(await directory.agents()),
            supervisors=listed(await directory.supervisors()),
            admins=listed(directory.admin_ids),
        )
    )


async def reindex(message: Message, bot: Bot, kb: KnowledgeBase, settings: Settings, agent_texts: Texts) -> None:
    """Rebuild the index from the source while the current one keeps answering; progress edited in place."""
    lang = _lang(message, agent_texts)
    status = await message.answer(agent_texts.get(lang, "reindex_progress", stage="…", percent=0))
    loop = asyncio.get_running_loop()
    last = [0.0]
    edits: list[concurrent.futures.Future[None]] = []

    def progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 2.0 and done < total:
            return  # Telegram allows about one edit a second per chat
        last[0] = now
        text = agent_texts.get(lang, "reindex_progress", stage=stage, percent=int(100 * done / max(total, 1)))
        edits.append(asyncio.run_coroutine_threadsafe(_edit(bot, status, text), loop))

    try:
        summary = await asyncio.to_thread(kb.reindex, settings.kb.source, progress)
    except KbSourceError as exc:
        await _settled(edits)
        root = f"{settings.kb.source}/"
        shown = [f"• {str(p).removeprefix(root)}" for p in exc.problems[:20]]
        if len(exc.problems) > len(shown):
            shown.append(agent_texts.get(lang, "reindex_more_problems", count=len(exc.problems) - len(shown)))
        text = agent_texts.get(lang, "reindex_failed", problems="\n".join(shown))
        await _edit(bot, status, text if len(text) <= 4096 else text[:4095] + "…")
        return
    await _settled(edits)  # a late progress edit must not overwrite the summary
    await _edit(
        bot,
        status,
        agent_texts.get(
            lang,
            "reindex_done",
            version=summary.version,
            articles=summary.articles,
            added=len(summary.added),
            changed=len(summary.changed),
            removed=len(summary.removed),
            seconds=f"{summary.seconds:.1f}",
        )
        + "\n\n"
        + (
            agent_texts.get(lang, "reindex_expectation", **summary.calibration.figures())
            if summary.calibration is not None
            else agent_texts.get(lang, "reindex_no_calibration")
        )
        + (
            "\n\n" + agent_texts.get(lang, "reindex_single_phrasing", **summary.single_phrasing_figures())
            if summary.single_phrasing
            else ""
        ),
    )


async def _settled(edits: list[concurrent.futures.Future[None]]) -> None:
    await asyncio.gather(*(asyncio.wrap_future(edit) for edit in edits), return_exceptions=True)


async def _edit(bot: Bot, message: Message, text: str) -> None:
    try:
        await bot.edit_message_text(text, chat_id=message.chat.id, message_id=message.message_id)
    except TelegramBadRequest:
        pass  # not modified: the same progress twice


async def gaps(message: Message, command: CommandObject, gap_log: GapLog, kb: KnowledgeBase, agent_texts: Texts) -> None:
    lang = _lang(message, agent_texts)
    days = _days(command)
    found = await gap_log.since(days)
    if not found:
        await message.answer(agent_texts.get(lang, "gaps_none", days=days))
        return
    groups = await asyncio.to_thread(group_gaps, kb.encoder, found, cache=kb.cache, knowledge=kb)
    lines = [agent_texts.get(lang, "gaps_header", days=days, total=len(found))]
    for number, group in enumerate([g for g in groups if g.still_open][:15], start=1):
        closest = group.closest_articles.most_common(1)
        lines.append(
            agent_texts.get(
                lang,
                "gaps_line",
                n=number,
                count=group.still_open,
                examples=" | ".join(f"«{e[:80]}»" for e in group.examples),
                closest=agent_texts.get(lang, "gaps_closest", article=closest[0][0]) if closest else "",
            )
        )
    answered = answered_now(groups)
    if answered is not None:
        lines.append("")
        lines.append(agent_texts.get(lang, "gaps_answered_now", **answered))
    await message.answer("\n".join(lines)[:4000])


def build_router() -> Router:
    router = Router(name="admin")
    router.message.filter(F.chat.type == "private")
    router.message.register(stats, Command("stats"), IsAdmin(supervisors_too=True))
    router.message.register(console, Command("console"), IsStaff())
    router.message.register(agents, Command("agents"), IsAdmin())
    router.message.register(reindex, Command("reindex"), IsAdmin())
    router.message.register(gaps, Command("gaps"), IsAdmin())
    return router

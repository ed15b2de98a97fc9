"""Telegram handlers for agents (in their private chat with the bot), and refusals for everyone else.

Agents' plain messages go to the customer of their current ticket, or, when they reply to a relayed message,
to that message's customer. Commands: /online /offline /next /queue /tickets /switch /close /release
/transfer /note /canned /kb /name /help.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import CallbackQuery, Message

from bot.telegram.delivery import file_of, message_kind
from bot.telegram.staff import TicketCallback, markup
from handoff.desk import TicketNotFound
from handoff.durations import format_duration
from handoff.ports import StaffButton
from handoff.roster import AgentDirectory
from handoff.tickets import Outcome, Ticket, TicketState
from handoff.workspace import AgentWorkspace
from kb_index import KnowledgeBase

__all__ = ["ADMIN_COMMANDS", "AGENT_COMMANDS", "IsAgent", "build_agents_router", "build_refusals_router"]

log = logging.getLogger(__name__)

AGENT_COMMANDS = (
    "online", "offline", "next", "take", "queue", "tickets", "switch", "close", "release", "transfer", "note", "canned",
    "kb", "name", "console",
)
ADMIN_COMMANDS = ("agents", "reindex", "gaps", "stats")


class IsAgent(Filter):
    """Passes updates from agents (configured or added by an admin)."""

    async def __call__(self, event: Message | CallbackQuery, directory: AgentDirectory) -> bool:
        user = event.from_user
        return user is not None and await directory.is_agent(user.id)


async def _prepare(message: Message, workspace: AgentWorkspace) -> tuple[int, str]:
    assert message.from_user is not None
    user = message.from_user
    await workspace.remember_agent(user.id, user.first_name, user.language_code)
    return user.id, await workspace.agent_lang(user.id)


async def _current(message: Message, workspace: AgentWorkspace, agent_id: int, argument: str | None = None) -> Ticket | None:
    """The ticket a command is about: named in the command, replied to, or the agent's current one."""
    ticket: Ticket | None = None
    if argument:
        ticket = await workspace.desk.get(argument.strip().upper())
    elif message.reply_to_message is not None:
        ticket_id = await workspace.relay.map.ticket_of(message.chat.id, message.reply_to_message.message_id)
        ticket = await workspace.desk.get(ticket_id) if ticket_id else None
    else:
        ticket = await workspace.active_ticket(agent_id)
    if ticket is None or ticket.state is not TicketState.ASSIGNED or ticket.agent_id != agent_id:
        held = await workspace.held(agent_id)
        await workspace.tell_agent(agent_id, "choose_ticket" if len(held) > 1 else "no_active")
        return None
    return ticket


# ---------------------------------------------------------------------- shift


async def online(message: Message, workspace: AgentWorkspace) -> None:
    agent_id, _ = await _prepare(message, workspace)
    await workspace.desk.shifts.begin(agent_id)
    await workspace.tell_agent(agent_id, "online", waiting=await workspace.desk.queue.length())


async def offline(message: Message, workspace: AgentWorkspace) -> None:
    agent_id, _ = await _prepare(message, workspace)
    released = await workspace.go_offline(agent_id)
    await workspace.tell_agent(agent_id, "offline", released=len(released))


async def agent_help(message: Message, workspace: AgentWorkspace) -> None:
    agent_id, _ = await _prepare(message, workspace)
    await workspace.tell_agent(agent_id, "agent_help")


async def set_name(message: Message, command: CommandObject, workspace: AgentWorkspace) -> None:
    agent_id, _ = await _prepare(message, workspace)
    name = (command.args or "").strip()
    if not name:
        await workspace.tell_agent(agent_id, "name_usage")
        return
    await workspace.directory.roster.set_agent_name(agent_id, name[:64])
    await workspace.tell_agent(agent_id, "name_set", name=name[:64])


# ---------------------------------------------------------------------- taking


async def take_next(message: Message, workspace: AgentWorkspace) -> None:
    agent_id, _ = await _prepare(message, workspace)
    await workspace.take(agent_id, None)


async def take_named(message: Message, command: CommandObject, workspace: AgentWorkspace) -> None:
    agent_id, _ = await _prepare(message, workspace)
    await workspace.take(agent_id, (command.args or "").strip().upper() or None)


async def queue(message: Message, workspace: AgentWorkspace) -> None:
    agent_id, lang = await _prepare(message, workspace)
    waiting = await workspace.desk.waiting(20)
    if not waiting:
        await workspace.tell_agent(agent_id, "queue_empty")
        return
    t = workspace.texts
    now = workspace.now()
    lines = [
        t.get(lang, "queue_line", ticket=x.id, name=x.customer_name, waited=format_duration(now - x.waiting_since, t, lang),
              reason=workspace.card.reason(x, lang) + workspace.card.frustration(x, lang))
        for x in waiting
    ]
    keyboard = markup([
        [StaffButton(t.get(lang, "btn_take", ticket=x.id), "take", x.id)] for x in waiting[:8]
    ])
    await message.answer("\n".join(lines), reply_markup=keyboard)


async def take_button(query: CallbackQuery, callback_data: TicketCallback, workspace: AgentWorkspace) -> None:
    await query.answer()
    user = query.from_user
    await workspace.remember_agent(user.id, user.first_name, user.language_code)
    await workspace.take(user.id, callback_data.t)


# ---------------------------------------------------------------------- tickets held


async def my_tickets(message: Message, workspace: AgentWorkspace) -> None:
    agent_id, lang = await _prepare(message, workspace)
    held = await workspace.held(agent_id)
    if not held:
        await workspace.tell_agent(agent_id, "my_tickets_none")
        return
    active = await workspace.active_ticket(agent_id)
    keyboard = markup([
        [StaffButton(("▶ " if active and x.id == active.id else "") + f"{x.id} · {x.customer_name}", "switch", x.id)]
        for x in held
    ])
    await message.answer(workspace.texts.get(lang, "my_tickets"), reply_markup=keyboard)


async def _switch(workspace: AgentWorkspace, agent_id: int, ticket_id: str) -> None:
    try:
        ticket = await workspace.desk.set_active(agent_id, ticket_id)
    except TicketNotFound:
        await workspace.tell_agent(agent_id, "no_active")
        return
    await workspace.tell_agent(agent_id, "switched", ticket=ticket.id, name=ticket.customer_name)


async def switch(message: Message, command: CommandObject, workspace: AgentWorkspace) -> None:
    agent_id, _ = await _prepare(message, workspace)
    await _switch(workspace, agent_id, (command.args or "").strip().upper())


async def switch_button(query: CallbackQuery, callback_data: TicketCallback, workspace: AgentWorkspace) -> None:
    await query.answer()
    await _switch(workspace, query.from_user.id, callback_data.t)


# ---------------------------------------------------------------------- closing, releasing, passing on

_OUTCOMES = {"resolved": Outcome.RESOLVED, "unresolved": Outcome.UNRESOLVED}


async def close(message: Message, command: CommandObject, workspace: AgentWorkspace) -> None:
    agent_id, lang = await _prepare(message, workspace)
    words = (command.args or "").split()
    outcome = next((_OUTCOMES[w.lower()] for w in words if w.lower() in _OUTCOMES), None)
    named = next((w for w in words if w.lower() not in _OUTCOMES), None)
    ticket = await _current(message, workspace, agent_id, named)
    if ticket is None:
        return
    if outcome is not None:
        await workspace.close(agent_id, ticket, outcome)
        return
    t = workspace.texts
    keyboard = markup([[
        StaffButton(t.get(lang, "btn_resolved"), "close", ticket.id, "resolved"),
        StaffButton(t.get(lang, "btn_unresolved"), "close", ticket.id, "unresolved"),
    ]])
    await message.answer(t.get(lang, "close_ask", ticket=ticket.id), reply_markup=keyboard)


async def close_button(query: CallbackQuery, callback_data: TicketCallback, workspace: AgentWorkspace) -> None:
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)
    agent_id = query.from_user.id
    ticket = await workspace.desk.get(callback_data.t)
    if ticket is None or ticket.state is not TicketState.ASSIGNED or ticket.agent_id != agent_id:
        await workspace.tell_agent(agent_id, "ticket_closed_already", ticket=callback_data.t)
        return
    await workspace.close(agent_id, ticket, _OUTCOMES.get(callback_data.v, Outcome.RESOLVED))


async def release(message: Message, command: CommandObject, workspace: AgentWorkspace) -> None:
    agent_id, _ = await _prepare(message, workspace)
    ticket = await _current(message, workspace, agent_id, command.args)
    if ticket is not None:
        await workspace.release(agent_id, ticket)


async def transfer(message: Message, command: CommandObject, workspace: AgentWorkspace) -> None:
    agent_id, lang = await _prepare(message, workspace)
    words = (command.args or "").split()
    target = next((int(w) for w in words if w.lstrip("-").isdigit()), None)
    named = next((w for w in words if w.upper().startswith("T") and w[1:].isdigit()), None)
    ticket = await _current(message, workspace, agent_id, named)
    if ticket is None:
        return
    if target is not None and target != agent_id and await workspace.directory.is_agent(target):
        await workspace.transfer(agent_id, ticket, target)
        return
    others = [a for a in await workspace.desk.shifts.on_shift() if a != agent_id]
    if not others:
        await workspace.tell_agent(agent_id, "transfer_nobody")
        return
    keyboard = markup([
        [StaffButton(await workspace.display_name(a), "transfer", ticket.id, str(a))] for a in others
    ])
    await message.answer(workspace.texts.get(lang, "transfer_choose", ticket=ticket.id), reply_markup=keyboard)


async def transfer_button(query: CallbackQuery, callback_data: TicketCallback, workspace: AgentWorkspace) -> None:
    await query.answer()
    agent_id = query.from_user.id
    ticket = await workspace.desk.get(callback_data.t)
    if ticket is None or ticket.agent_id != agent_id or ticket.state is not TicketState.ASSIGNED:
        await workspace.tell_agent(agent_id, "no_active")
        return
    await workspace.transfer(agent_id, ticket, int(callback_data.v))


async def note(message: Message, command: CommandObject, workspace: AgentWorkspace) -> None:
    agent_id, _ = await _prepare(message, workspace)
    text = (command.args or "").strip()
    if not text:
        await workspace.tell_agent(agent_id, "note_empty")
        return
    ticket = await _current(message, workspace, agent_id)
    if ticket is not None:
        await workspace.desk.notes.add(ticket.id, agent_id, text)
        await workspace.tell_agent(agent_id, "note_saved", ticket=ticket.id)


# ---------------------------------------------------------------------- canned replies and articles


async def canned(message: Message, command: CommandObject, workspace: AgentWorkspace) -> None:
    agent_id, lang = await _prepare(message, workspace)
    name = (command.args or "").strip()
    names = workspace.canned_names()
    if not names:
        await workspace.tell_agent(agent_id, "canned_none")
        return
    if not name:
        keyboard = markup([
            [StaffButton(n, "canned", "", n)] for n in names
        ])
        await message.answer(workspace.texts.get(lang, "canned_list"), reply_markup=keyboard)
        return
    ticket = await _current(message, workspace, agent_id)
    if ticket is not None and not await workspace.send_canned(agent_id, ticket, name):
        await workspace.tell_agent(agent_id, "canned_unknown", name=name)


async def canned_button(query: CallbackQuery, callback_data: TicketCallback, workspace: AgentWorkspace) -> None:
    await query.answer()
    agent_id = query.from_user.id
    ticket = await workspace.active_ticket(agent_id)
    if ticket is None:
        await workspace.tell_agent(agent_id, "no_active")
        return
    await workspace.send_canned(agent_id, ticket, callback_data.v)


async def kb_search(message: Message, command: CommandObject, workspace: AgentWorkspace, kb: KnowledgeBase) -> None:
    agent_id, lang = await _prepare(message, workspace)
    query = (command.args or "").strip()
    if not query:
        await workspace.tell_agent(agent_id, "kb_usage")
        return
    ticket = await _current(message, workspace, agent_id)
    if ticket is None:
        return
    result = await kb.search_async(query, lang=ticket.lang, limit=5)
    if not result.matches:
        await workspace.tell_agent(agent_id, "kb_nothing")
        return
    await workspace.offer_articles(agent_id, ticket.id, [m.article_id for m in result.matches])
    keyboard = markup([
        [StaffButton(f"{m.title[:50]} ({m.score:.2f})", "kb", ticket.id, str(i))]
        for i, m in enumerate(result.matches)
    ])
    await message.answer(workspace.texts.get(lang, "kb_choose"), reply_markup=keyboard)


async def kb_attach(query: CallbackQuery, callback_data: TicketCallback, workspace: AgentWorkspace, kb: KnowledgeBase) -> None:
    await query.answer()
    agent_id = query.from_user.id
    ticket = await workspace.desk.get(callback_data.t)
    article_id = await workspace.offered_article(agent_id, callback_data.t, int(callback_data.v or -1))
    if article_id is None or ticket is None or ticket.agent_id != agent_id or ticket.state is not TicketState.ASSIGNED:
        await workspace.tell_agent(agent_id, "no_active")
        return
    article = kb.article(article_id, ticket.lang)
    await workspace.send_article(ticket, article)
    if ticket.question and kb.learn(article_id, ticket.question, lang=ticket.lang, source=f"agent:{agent_id}"):
        await workspace.tell_agent(agent_id, "kb_sent", title=article.title, question=ticket.question[:200])
    else:
        await workspace.tell_agent(agent_id, "kb_sent_no_question", title=article.title)


# ---------------------------------------------------------------------- relay


async def agent_says(message: Message, workspace: AgentWorkspace) -> None:
    """Anything else an agent writes goes to a customer: the one replied to, or the current one."""
    agent_id, _ = await _prepare(message, workspace)
    ticket = await _current(message, workspace, agent_id)
    if ticket is not None:
        file_ref, file_name = file_of(message)
        await workspace.relay.agent_message(
            ticket, message.chat.id, message.message_id, message_kind(message), message.text or message.caption or "",
            file_ref=file_ref, file_name=file_name,
        )


# ---------------------------------------------------------------------- everyone else


async def refuse_command(message: Message, agent_texts: Any) -> None:
    """A customer typing an agent's or admin's command gets a plain refusal and learns nothing else."""
    code = message.from_user.language_code if message.from_user else None
    await message.answer(agent_texts.get(agent_texts.for_code(code), "not_agent"))


async def refuse_button(query: CallbackQuery, agent_texts: Any) -> None:
    await query.answer(agent_texts.get(agent_texts.for_code(query.from_user.language_code), "not_agent"), show_alert=True)


def build_agents_router() -> Router:
    """Agents' commands, buttons and messages; a new router per dispatcher."""
    router = Router(name="agents")
    router.message.filter(F.chat.type == "private", IsAgent())
    router.callback_query.filter(IsAgent())
    router.message.register(online, Command("online"))
    router.message.register(offline, Command("offline"))
    router.message.register(agent_help, Command("help", "start"))
    router.message.register(set_name, Command("name"))
    router.message.register(take_next, Command("next"))
    router.message.register(take_named, Command("take"))
    router.message.register(queue, Command("queue"))
    router.callback_query.register(take_button, TicketCallback.filter(F.a == "take"))
    router.message.register(my_tickets, Command("tickets"))
    router.message.register(switch, Command("switch"))
    router.callback_query.register(switch_button, TicketCallback.filter(F.a == "switch"))
    router.message.register(close, Command("close"))
    router.callback_query.register(close_button, TicketCallback.filter(F.a == "close"))
    router.message.register(release, Command("release"))
    router.message.register(transfer, Command("transfer"))
    router.callback_query.register(transfer_button, TicketCallback.filter(F.a == "transfer"))
    router.message.register(note, Command("note"))
    router.message.register(canned, Command("canned"))
    router.callback_query.register(canned_button, TicketCallback.filter(F.a == "canned"))
    router.message.register(kb_search, Command("kb"))
    router.callback_query.register(kb_attach, TicketCallback.filter(F.a == "kb"))
    router.message.register(agent_says, ~F.text.startswith("/"))
    router.message.register(agent_help)  # any other command: what agents can do
    return router


def build_refusals_router() -> Router:
    """Agents' and admins' commands and buttons from anyone else: refused."""
    router = Router(name="staff-refusals")
    router.message.filter(F.chat.type == "private")
    router.message.register(refuse_command, Command(*AGENT_COMMANDS, *ADMIN_COMMANDS))
    router.callback_query.register(refuse_button, TicketCallback.filter())
    return router

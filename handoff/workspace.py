"""What agents do, on whatever channel they work from: take tickets, see the context card, answer, close, pass on.

``AgentWorkspace`` uses the desk (tickets in Redis), the relay (messages both ways) and a ``StaffChannel``
(``handoff.ports``) to reach agents, and speaks to agents in their language and to customers in theirs. What
agents read of a ticket is the context card (``handoff.card``); new tickets reach them as announcements
(``handoff.announcements``). The Telegram routers (``bot.telegram.routers.agents``), the web workplace
(``bot.web.console``) and the queue monitor (``handoff.monitor``) call it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path

import redis.asyncio as aioredis

from bot.core.conversation import Turn
from bot.core.formatting import article_html, split_message
from bot.core.texts import Texts
from handoff import keys
from handoff.announcements import Announcements
from handoff.card import ContextCard
from handoff.desk import HandoffDesk, TakeResult, TicketNotFound
from handoff.durations import format_wait_estimate
from handoff.ports import StaffButtons, StaffChannel
from handoff.relay import Relay
from handoff.roster import AgentDirectory
from handoff.tickets import Outcome, Ticket
from kb_index.articles import Article

__all__ = ["AgentWorkspace", "TeamChange", "load_canned"]

log = logging.getLogger(__name__)


class TeamChange(StrEnum):
    """What an admin may change in the team (the names the workplace's team form sends)."""

    ADD_AGENT = "add-agent"
    REMOVE_AGENT = "remove-agent"
    ADD_SUPERVISOR = "add-supervisor"
    REMOVE_SUPERVISOR = "remove-supervisor"

    @property
    def removes(self) -> bool:
        return self.value.startswith("remove")


class AgentWorkspace:
    """Agents' actions on tickets, with the messages they cause on both sides."""

    def __init__(
        self,
        redis: aioredis.Redis,
        desk: HandoffDesk,
        relay: Relay,
        staff: StaffChannel,
        directory: AgentDirectory,
        agent_texts: Texts,
        customer_texts: Texts,
        *,
        canned: Texts | None = None,
        article_title: Callable[[str, str], str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self.desk = desk
        self.relay = relay
        self.staff = staff
        self.directory = directory
        self.texts = agent_texts
        self.customer_texts = customer_texts
        self.canned = canned
        self.card = ContextCard(desk, directory.roster, agent_texts, article_title=article_title, clock=clock)
        self.announcements = Announcements(redis, desk, staff, directory.roster, self.card)
        self.events = relay.events
        self._clock = clock

    # ------------------------------------------------------------------ helpers

    async def agent_lang(self, agent_id: int) -> str:
        return self.texts.lang(await self.directory.roster.language(agent_id))

    async def remember_agent(self, agent_id: int, first_name: str, language_code: str | None) -> None:
        """The agent's language for texts, and a display name customers see until he sets his own."""
        await self.directory.roster.set_language(agent_id, self.texts.for_code(language_code))
        if not await self.directory.roster.agent_name(agent_id):
            await self.directory.roster.set_agent_name(agent_id, first_name)

    async def display_name(self, agent_id: int) -> str:
        return await self.directory.roster.display_name(agent_id)

    def now(self) -> float:
        return self._clock()

    async def tell_agent(self, agent_id: int, key: str, buttons: StaffButtons = (), **params: object) -> None:
        lang = await self.agent_lang(agent_id)
        await self.staff.send(agent_id, self.texts.get(lang, key, **params), buttons)

    async def tell_customer(self, ticket: Ticket, key: str, **params: object) -> None:
        """A notice to the customer, delivered in order with the relayed messages of his ticket."""
        await self.relay.send_text(ticket.chat_id, self.customer_texts.get(ticket.lang, key, **params), ticket.id)

    # ------------------------------------------------------------------ taking

    async def take(self, agent_id: int, ticket_id: str | None) -> TakeResult | None:
        """Take a ticket (or, with None, the most urgent one); tells the agent and the customer."""
        name = await self.display_name(agent_id)
        if ticket_id is None:
            result = await self.desk.take_next(agent_id, name)
            if result is None:
                await self.tell_agent(agent_id, "queue_empty")
                return None
        else:
            result = await self.desk.take(ticket_id, agent_id, name)
        if not result.ok:
            await self._explain_refusal(agent_id, ticket_id or "", result)
            return result
        assert result.ticket is not None
        await self.took(agent_id, result.ticket)
        return result

    async def took(self, agent_id: int, ticket: Ticket) -> None:
        """A ticket the agent now holds (taken, or given to him): his card, the customer told who joined."""
        await self.announcements.retire(ticket)
        await self.send_card(agent_id, ticket, await self.agent_lang(agent_id))
        await self.tell_customer(ticket, "handoff_agent_joined", agent=await self.display_name(agent_id))

    async def _explain_refusal(self, agent_id: int, ticket_id: str, result: TakeResult) -> None:
        if result.reason == "taken":
            holder = result.holder_name or str(result.holder_id)
            await self.tell_agent(agent_id, "taken_by_other", ticket=ticket_id, agent=holder)
        elif result.reason == "closed":
            await self.tell_agent(agent_id, "ticket_closed_already", ticket=ticket_id)
        elif result.reason == "full":
            await self.tell_agent(agent_id, "too_many", count=self.desk.max_tickets_per_agent)
        else:
            await self.tell_agent(agent_id, "ticket_missing", ticket=ticket_id)

    async def send_card(self, agent_id: int, ticket: Ticket, lang: str) -> None:
        card = await self.card.render(ticket, lang)
        message_id = await self.staff.send(agent_id, card)
        if message_id is not None:
            await self.relay.map.remember(agent_id, message_id, ticket.id)

    # ------------------------------------------------------------------ closing, releasing, passing on

    async def close(self, agent_id: int, ticket: Ticket, outcome: Outcome) -> Ticket:
        closed = await self.desk.close(ticket.id, outcome, closed_by=f"agent:{agent_id}")
        lang = await self.agent_lang(agent_id)
        await self.tell_agent(agent_id, "closed", ticket=ticket.id, outcome=self.texts.get(lang, f"outcome_{outcome.value}"))
        await self.tell_customer(closed, "handoff_closed")
        await self._closed(closed)
        return closed

    async def _closed(self, ticket: Ticket) -> None:
        await self.announcements.retire(ticket)
        await self.events.closed(ticket)

    async def closed_by_customer(self, ticket: Ticket) -> None:
        """The customer cancelled ("I found the answer"): his agent, if any, is told."""
        if ticket.agent_id:
            await self.tell_agent(ticket.agent_id, "customer_cancelled", ticket=ticket.id)
        await self._closed(ticket)

    async def close_silent(self, ticket: Ticket, minutes: float) -> Ticket:
        closed = await self.desk.close(ticket.id, Outcome.CUSTOMER_SILENT, closed_by="system:silence")
        await self.tell_customer(closed, "handoff_silence_closed")
        if ticket.agent_id:
            await self.tell_agent(ticket.agent_id, "customer_silent", ticket=ticket.id, minutes=int(minutes))
        await self._closed(closed)
        return closed

    async def release(self, agent_id: int, ticket: Ticket) -> Ticket:
        released = await self.desk.release(ticket.id, agent_id)
        await self.tell_agent(agent_id, "released", ticket=ticket.id)
        position = await self.desk.queue.position(ticket.id) or 1
        eta = await self._eta(position, released.lang)
        await self.tell_customer(released, "handoff_released", position=position, eta=eta)
        await self.announcements.announce(released)
        return released

    async def not_accepted(self, agent_id: int, ticket: Ticket, seconds: float) -> Ticket:
        """A ticket given to the agent and left unanswered goes back to the queue; both are told."""
        current = await self.desk.require(ticket.id)
        if current.accepted or current.agent_id != agent_id:
            raise TicketNotFound(f"ticket {ticket.id} was answered or moved meanwhile")
        released = await self.desk.pass_over(ticket.id, agent_id)
        await self.tell_agent(agent_id, "not_accepted", ticket=ticket.id, minutes=max(1, round(seconds / 60)))
        position = await self.desk.queue.position(ticket.id) or 1
        eta = await self._eta(position, released.lang)
        await self.tell_customer(released, "handoff_requeued", position=position, eta=eta)
        return released

    async def transfer(self, agent_id: int, ticket: Ticket, to_agent: int) -> Ticket:
        to_name = await self.display_name(to_agent)
        moved = await self.desk.transfer(ticket.id, to_agent, to_name, from_agent=agent_id)
        from_name = await self.display_name(agent_id)
        await self.tell_agent(agent_id, "transferred", ticket=ticket.id, agent=to_name)
        await self.tell_agent(to_agent, "transferred_to_you", ticket=ticket.id, agent=from_name)
        await self.send_card(to_agent, moved, await self.agent_lang(to_agent))
        await self.tell_customer(moved, "handoff_transferred", agent=to_name)
        return moved

    async def _eta(self, position: int, lang: str) -> str:
        return format_wait_estimate(await self.desk.queue.estimate_wait(position), self.customer_texts, lang)

    async def go_offline(self, agent_id: int) -> list[Ticket]:
        await self.desk.shifts.end(agent_id)
        released = await self.desk.release_all(agent_id)
        for ticket in released:
            position = await self.desk.queue.position(ticket.id) or 1
            await self.tell_customer(ticket, "handoff_released", position=position, eta=await self._eta(position, ticket.lang))
            await self.announcements.announce(ticket)
        return released

    async def change_team(self, change: TeamChange, user_id: int) -> bool:
        """An admin adds or removes an agent or a supervisor (Telegram's ``/agents``, the workplace's team page);
        False when it changed nothing. Someone who is no longer an agent goes off shift: his tickets go back to
        the queue and their customers are told."""
        roster = self.directory.roster
        changed = await {
            TeamChange.ADD_AGENT: roster.add_agent,
            TeamChange.REMOVE_AGENT: roster.remove_agent,
            TeamChange.ADD_SUPERVISOR: roster.add_supervisor,
            TeamChange.REMOVE_SUPERVISOR: roster.remove_supervisor,
        }[change](user_id)
        if changed and change.removes and not await self.directory.is_agent(user_id):
            await self.go_offline(user_id)
        return changed

    # ------------------------------------------------------------------ canned replies and articles

    def canned_names(self) -> list[str]:
        if self.canned is None:
            return []
        return self.canned.keys()

    async def send_canned(self, agent_id: int, ticket: Ticket, name: str) -> bool:
        if self.canned is None or name not in self.canned_names():
            return False
        text = self.canned.get(ticket.lang, name, name=ticket.customer_name, agent=await self.display_name(agent_id))
        await self.relay.send_text(ticket.chat_id, text, ticket.id, direction="to_customer")
        await self.desk.append_turn(ticket.id, Turn("agent", "text", text, ticket.lang, {"canned": name}, self._clock()))
        await self.desk.mark(ticket.id, agent_reply=True)
        return True

    async def send_article(self, ticket: Ticket, article: Article) -> None:
        """A knowledge-base article to the ticket's customer, as the bot would show it, from his agent."""
        for part in split_message(article_html(article.title, article.answer)):
            await self.relay.send_text(ticket.chat_id, part, ticket.id, direction="to_customer", html=True)
        await self.desk.append_turn(
            ticket.id, Turn("agent", "article", article.id, ticket.lang, {"title": article.title}, self._clock())
        )
        await self.desk.mark(ticket.id, agent_reply=True)

    async def offer_articles(self, agent_id: int, ticket_id: str, article_ids: Sequence[str]) -> None:
        """The articles an agent was offered for a ticket (``/kb``), until he picks one or an hour passes."""
        offer = {"ticket": ticket_id, "articles": list(article_ids)}
        await self._redis.set(keys.agent_kb_offer(agent_id), json.dumps(offer), ex=3600)

    async def offered_article(self, agent_id: int, ticket_id: str, number: int) -> str | None:
        """The article the agent picked from his last offer for this ticket; None when it is not on offer."""
        raw = await self._redis.get(keys.agent_kb_offer(agent_id))
        offer = json.loads(raw) if raw else {}
        articles = offer.get("articles", []) if offer.get("ticket") == ticket_id else []
        return str(articles[number]) if 0 <= number < len(articles) else None

    async def active_ticket(self, agent_id: int) -> Ticket | None:
        return await self.desk.active_ticket(agent_id)

    async def held(self, agent_id: int) -> list[Ticket]:
        return await self.desk.agent_tickets(agent_id)


def load_canned(folder: Path | None, default_lang: str = "ru") -> Texts | None:
    folder = folder or Path(__file__).parent / "canned"
    return Texts.load(folder, default_lang) if folder.is_dir() else None


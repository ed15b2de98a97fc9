"""What agents do, on whatever channel they work from: take tickets, see the context card, answer, close, pass on.

``AgentWorkspace`` uses the desk (tickets in Redis), the relay (messages both ways) and a ``StaffChannel``
(``handoff.ports``) to reach agents, and speaks to agents in their language and to customers in theirs. The
Telegram routers (``bot.telegram.routers.agents``) and the queue monitor (``handoff.monitor``) call it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from bot.core.conversation import Turn
from bot.core.formatting import article_html, split_message
from bot.core.redis_values import optional_text, texts
from bot.core.texts import Texts
from handoff import keys
from handoff.desk import HandoffDesk, TakeResult, TicketNotFound
from handoff.ports import StaffButton, StaffButtons, StaffChannel
from handoff.relay import Relay
from handoff.roster import AgentDirectory
from handoff.tickets import Outcome, Ticket, TicketState
from kb_index.articles import Article

__all__ = ["AgentWorkspace", "format_duration", "format_wait_estimate", "load_canned"]

log = logging.getLogger(__name__)



def format_wait_estimate(seconds: float, texts: Texts, lang: str) -> str:
    """What a waiting customer is told of his wait, the same wherever it is said (his place in the queue, its
    updates, a transfer): rounded up to 5 minutes, at least 5; in hours from an hour and a half."""
    minutes = max(5, math.ceil(seconds / 300) * 5)
    if minutes < 90:
        return texts.get(lang, "eta_minutes", minutes=minutes)
    return texts.get(lang, "eta_hours", hours=round(minutes / 60))


def format_duration(seconds: float, texts: Texts, lang: str) -> str:
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return texts.get(lang, "minutes", n=minutes)
    return texts.get(lang, "hours_minutes", h=minutes // 60, m=minutes % 60)


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
        self._article_title = article_title
        self.events = relay.events
        self._clock = clock

    # ------------------------------------------------------------------ helpers

    async def agent_lang(self, agent_id: int) -> str:
        return self.texts.lang(optional_text(await self._redis.hget(keys.agent(agent_id), "lang")))

    async def remember_agent(self, agent_id: int, first_name: str, language_code: str | None) -> None:
        """The agent's language for texts, and a display name customers see until he sets his own."""
        await self._redis.hset(keys.agent(agent_id), "lang", self.texts.for_code(language_code))
        if not await self.directory.roster.agent_name(agent_id):
            await self.directory.roster.set_agent_name(agent_id, first_name)

    async def display_name(self, agent_id: int) -> str:
        return await self.directory.roster.agent_name(agent_id) or str(agent_id)

    def now(self) -> float:
        return self._clock()

    async def tell_agent(self, agent_id: int, key: str, buttons: StaffButtons = (), **params: object) -> None:
        lang = await self.agent_lang(agent_id)
        await self.staff.send(agent_id, self.texts.get(lang, key, **params), buttons)

    async def tell_customer(self, ticket: Ticket, key: str, **params: object) -> None:
        """A notice to the customer, delivered in order with the relayed messages of his ticket."""
        await self.relay.send_text(ticket.chat_id, self.customer_texts.get(ticket.lang, key, **params), ticket.id)

    def reason_text(self, ticket: Ticket, lang: str) -> str:
        return self.texts.get(lang, f"reason_{ticket.reason.value}")

    def frustration_text(self, ticket: Ticket, lang: str) -> str:
        return self.texts.get(lang, "frustration_label", signs=", ".join(ticket.frustration)) if ticket.frustration else ""

    # ------------------------------------------------------------------ new tickets

    async def announce(self, ticket: Ticket) -> None:
        """A new ticket: each agent on shift gets it with a Take button (unless it was already given to one)."""
        current = await self.desk.get(ticket.id)
        if current is None or current.state is not TicketState.WAITING:
            return
        for agent_id in await self.desk.online_agents():
            lang = await self.agent_lang(agent_id)
            take = StaffButton(self.texts.get(lang, "btn_take", ticket=ticket.id), "take", ticket.id)
            text = self.texts.get(
                lang,
                "new_ticket",
                ticket=ticket.id,
                name=_who(ticket),
                lang=ticket.lang,
                reason=self.reason_text(ticket, lang),
                frustration=self.frustration_text(ticket, lang),
                question=_short(ticket.question or "—", 300),
            )
            message_id = await self.staff.send(agent_id, text, ((take,),))
            if message_id is None:
                continue
            await self._redis.rpush(_announcements(ticket.id), f"{agent_id}:{message_id}")
            await self._redis.expire(_announcements(ticket.id), 7 * 24 * 3600)

    async def _retire_announcements(self, ticket: Ticket) -> None:
        """The Take buttons of a ticket that is no longer waiting are removed everywhere."""
        for item in texts(await self._redis.lrange(_announcements(ticket.id), 0, -1)):
            chat, message = item.split(":")
            await self.staff.remove_buttons(int(chat), int(message))
        await self._redis.delete(_announcements(ticket.id))

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
        await self._retire_announcements(ticket)
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

    async def context_card(self, ticket: Ticket, lang: str) -> str:
        t = self.texts
        turns = await self.desk.context(ticket.id)
        history = await self.desk.customer_history(ticket.chat_id, exclude=ticket.id)
        earlier = ", ".join(
            f"{old.id} ({datetime.fromtimestamp(old.created_at, UTC):%d.%m}"
            + (f", {t.get(lang, 'outcome_' + old.outcome)}" if old.outcome else "")
            + ")"
            for old in history
        ) or t.get(lang, "card_no_history")
        waited_until = ticket.taken_at or self._clock()
        return t.get(
            lang,
            "card",
            ticket=ticket.id,
            name=_who(ticket),
            username=f" (@{ticket.username})" if ticket.username else "",
            lang=ticket.lang,
            waited=format_duration(waited_until - ticket.waiting_since, t, lang),
            reason=self.reason_text(ticket, lang),
            frustration=self.frustration_text(ticket, lang),
            tried=self.tried(turns, ticket.lang, lang),
            transcript=self.transcript(turns, lang),
            history=earlier,
            notes=await self._notes(ticket, lang),
        )

    async def _notes(self, ticket: Ticket, lang: str) -> str:
        """The agents' internal notes on the ticket, with who wrote each ("" when there are none)."""
        written = [
            f"{await self.display_name(int(str(note['agent_id'])))}: {_short(str(note['text']).replace(chr(10), ' '), 300)}"
            for note in await self.desk.notes(ticket.id)
        ]
        return self.texts.get(lang, "card_notes", notes="; ".join(written)) if written else ""

    async def send_card(self, agent_id: int, ticket: Ticket, lang: str) -> None:
        card = await self.context_card(ticket, lang)
        message_id = await self.staff.send(agent_id, card)
        if message_id is not None:
            await self.relay.map.remember(agent_id, message_id, ticket.id)

    def _title(self, article_id: str, lang: str) -> str:
        if self._article_title is None:
            return article_id
        try:
            return self._article_title(article_id, lang)
        except LookupError:
            return article_id

    def tried(self, turns: Sequence[Turn], customer_lang: str, lang: str) -> str:
        """Articles the bot showed, with the customer's feedback on each."""
        feedback: dict[str, str] = {}
        for turn in turns:
            if turn.kind == "feedback":
                for article_id in turn.data.get("articles", []):
                    feedback[str(article_id)] = turn.text
        shown: list[str] = []
        for turn in turns:
            if turn.kind == "decision":
                matches = turn.data.get("matches", [])
                if turn.text == "answer" and matches:
                    shown.append(str(matches[0]["article_id"]))
                elif turn.text == "clarify":
                    shown.extend(str(m["article_id"]) for m in matches[:3])
            elif turn.kind == "choice":
                shown.append(turn.text)
        if not shown:
            return self.texts.get(lang, "card_nothing_tried")
        parts = []
        for article_id in dict.fromkeys(shown):
            label = f"«{self._title(article_id, customer_lang)}»"
            if article_id in feedback:
                label += f" — {self.texts.get(lang, 'feedback_' + feedback[article_id])}"
            parts.append(label)
        return "; ".join(parts)

    def transcript(self, turns: Sequence[Turn], lang: str, limit: int = 12) -> str:
        """The last messages of a conversation, one line each, as an agent or a supervisor reads them."""
        lines = []
        for turn in turns:
            role, kind = turn.role, turn.kind
            if role not in ("customer", "bot", "agent") or kind not in (
                "text", "edited_text", "message", "media", "flooded", "command", "button",
            ):
                continue
            text = turn.text or ""
            if kind == "media":
                text = f"[{turn.data.get('media', 'media')}] {text}".strip()
            if not text:
                continue
            lines.append(f"{self.texts.get(lang, 'role_' + role)}: {_short(text.replace(chr(10), ' '), 200)}")
        return "\n".join(lines[-limit:]) or "—"

    # ------------------------------------------------------------------ closing, releasing, passing on

    async def close(self, agent_id: int, ticket: Ticket, outcome: Outcome) -> Ticket:
        closed = await self.desk.close(ticket.id, outcome, closed_by=f"agent:{agent_id}")
        lang = await self.agent_lang(agent_id)
        await self.tell_agent(agent_id, "closed", ticket=ticket.id, outcome=self.texts.get(lang, f"outcome_{outcome.value}"))
        await self.tell_customer(closed, "handoff_closed")
        await self._closed(closed)
        return closed

    async def _closed(self, ticket: Ticket) -> None:
        await self._retire_announcements(ticket)
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
        position = await self.desk.position(ticket.id) or 1
        eta = await self._eta(position, released.lang)
        await self.tell_customer(released, "handoff_released", position=position, eta=eta)
        await self.announce(released)
        return released

    async def not_accepted(self, agent_id: int, ticket: Ticket, seconds: float) -> Ticket:
        """A ticket given to the agent and left unanswered goes back to the queue; both are told."""
        current = await self.desk.require(ticket.id)
        if current.accepted or current.agent_id != agent_id:
            raise TicketNotFound(f"ticket {ticket.id} was answered or moved meanwhile")
        released = await self.desk.pass_over(ticket.id, agent_id)
        await self.tell_agent(agent_id, "not_accepted", ticket=ticket.id, minutes=max(1, round(seconds / 60)))
        position = await self.desk.position(ticket.id) or 1
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
        return format_wait_estimate(await self.desk.estimate_wait(position), self.customer_texts, lang)

    async def go_offline(self, agent_id: int) -> list[Ticket]:
        released = await self.desk.set_online(agent_id, False)
        for ticket in released:
            position = await self.desk.position(ticket.id) or 1
            await self.tell_customer(ticket, "handoff_released", position=position, eta=await self._eta(position, ticket.lang))
            await self.announce(ticket)
        return released

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


def _announcements(ticket_id: str) -> str:
    return f"{keys.PREFIX}:ticket:{ticket_id}:announcements"


def _who(ticket: Ticket) -> str:
    """The customer as agents read him: his name, and his channel when it is not Telegram ("Anna · web")."""
    return ticket.customer_name if ticket.channel == "telegram" else f"{ticket.customer_name} · {ticket.channel}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_canned(folder: Path | None, default_lang: str = "ru") -> Texts | None:
    folder = folder or Path(__file__).parent / "canned"
    return Texts.load(folder, default_lang) if folder.is_dir() else None


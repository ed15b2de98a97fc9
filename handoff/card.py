"""The context card: what an agent reads about a ticket when it reaches him, so that the customer never repeats
himself: who he is and on which channel, why he was handed over, how long he waited, what the bot showed him
and what he said of it, the last messages, his earlier tickets and the agents' notes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from bot.core.conversation import Turn
from bot.core.texts import Texts
from handoff.desk import HandoffDesk
from handoff.durations import format_duration
from handoff.roster import Roster
from handoff.tickets import Ticket

__all__ = ["ContextCard", "short", "who"]


class ContextCard:
    """Writes a ticket's card, and its parts the workplace shows on their own, in the agent's language."""

    def __init__(
        self,
        desk: HandoffDesk,
        roster: Roster,
        texts: Texts,
        *,
        article_title: Callable[[str, str], str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._desk = desk
        self._roster = roster
        self.texts = texts
        self._article_title = article_title
        self._clock = clock

    async def render(self, ticket: Ticket, lang: str) -> str:
        t = self.texts
        turns = await self._desk.context(ticket.id)
        history = await self._desk.customer_history(ticket.chat_id, exclude=ticket.id)
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
            name=who(ticket),
            username=f" (@{ticket.username})" if ticket.username else "",
            lang=ticket.lang,
            waited=format_duration(waited_until - ticket.waiting_since, t, lang),
            reason=self.reason(ticket, lang),
            frustration=self.frustration(ticket, lang),
            tried=self.tried(turns, ticket.lang, lang),
            transcript=self.transcript(turns, lang),
            history=earlier,
            notes=await self._notes(ticket, lang),
        )

    def reason(self, ticket: Ticket, lang: str) -> str:
        return self.texts.get(lang, f"reason_{ticket.reason.value}")

    def frustration(self, ticket: Ticket, lang: str) -> str:
        return self.texts.get(lang, "frustration_label", signs=", ".join(ticket.frustration)) if ticket.frustration else ""

    async def _notes(self, ticket: Ticket, lang: str) -> str:
        """The agents' internal notes on the ticket, with who wrote each ("" when there are none)."""
        written = [
            f"{await self._roster.display_name(note.agent_id)}: {short(note.text.replace(chr(10), ' '), 300)}"
            for note in await self._desk.notes.of(ticket.id)
        ]
        return self.texts.get(lang, "card_notes", notes="; ".join(written)) if written else ""

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
            lines.append(f"{self.texts.get(lang, 'role_' + role)}: {short(text.replace(chr(10), ' '), 200)}")
        return "\n".join(lines[-limit:]) or "—"


def who(ticket: Ticket) -> str:
    """The customer as agents read him: his name, and his channel when it is not Telegram ("Anna · web")."""
    return ticket.customer_name if ticket.channel == "telegram" else f"{ticket.customer_name} · {ticket.channel}"


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""A Rasa conversation as the agent sees it: Rasa's tracker events turned into Zabota's conversation turns.

What the customer wrote and what the assistant answered become the transcript on the agent's ticket card; a
tapped button shows as its title, not its payload; each ``action_kb_answer`` becomes a decision turn, so the card
lists the articles the assistant already tried.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.core.conversation import Turn
from intents.frustration import ConversationTurn

__all__ = ["SLOT_ARTICLE", "SLOT_CONFIDENCE", "SLOT_DECISION", "frustration_history", "turns_from_events"]

SLOT_DECISION = "zabota_decision"
SLOT_CONFIDENCE = "zabota_confidence"
SLOT_ARTICLE = "zabota_article_id"
_SESSION_BREAKS = ("restart", "session_started")


def turns_from_events(events: Sequence[dict[str, Any]], lang: str) -> list[Turn]:
    """The current session's turns, oldest first (what came before a restart or a new session is left out)."""
    start = max((i + 1 for i, event in enumerate(events) if event.get("event") in _SESSION_BREAKS), default=0)
    turns: list[Turn] = []
    buttons: dict[str, str] = {}  # payload -> title, of the last bot message's buttons
    decision: dict[str, Any] = {}
    for event in events[start:]:
        kind = event.get("event")
        at = float(event.get("timestamp") or 0.0)
        if kind == "slot":  # an action's slots come together, after its messages
            if event.get("name") in (SLOT_DECISION, SLOT_CONFIDENCE, SLOT_ARTICLE):
                decision[str(event["name"])] = event.get("value")
                decision.setdefault("at", at)
            continue
        _flush_decision(decision, turns, lang)
        if kind == "user":
            text = str(event.get("text") or "").strip()
            if text in buttons:
                turns.append(Turn("customer", "button", buttons[text], lang, {"payload": text}, at=at))
            elif text:
                turns.append(Turn("customer", "text", text, lang, {"channel": event.get("input_channel") or ""}, at=at))
        elif kind == "bot":
            text = str(event.get("text") or "")
            rows = (event.get("data") or {}).get("buttons") or []
            buttons = {str(b.get("payload")): str(b.get("title")) for b in rows if b.get("payload")}
            data = {"buttons": [[b.get("title") for b in rows]]} if rows else {}
            if text:
                turns.append(Turn("bot", "message", text, lang, data, at=at))
    _flush_decision(decision, turns, lang)
    return turns


def _flush_decision(decision: dict[str, Any], turns: list[Turn], lang: str) -> None:
    if decision.get(SLOT_DECISION):
        article = decision.get(SLOT_ARTICLE)
        confidence = float(decision.get(SLOT_CONFIDENCE) or 0.0)
        matches = [{"article_id": str(article), "score": confidence}] if article else []
        turns.append(Turn("bot", "decision", str(decision[SLOT_DECISION]), lang,
                          {"confidence": confidence, "matches": matches}, at=float(decision.get("at", 0.0))))
    decision.clear()


def frustration_history(turns: Iterable[Turn]) -> list[ConversationTurn]:
    """The customer's messages, as the frustration signals read them."""
    return [
        ConversationTurn("customer", turn.text, at=datetime.fromtimestamp(turn.at, UTC))
        for turn in turns
        if turn.role == "customer" and turn.kind == "text"
    ]

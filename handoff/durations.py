"""How waits and durations are said to people, the same wherever they are said: a customer's expected wait
(his place in the queue, its updates, a transfer), and how long something took for agents and supervisors."""

from __future__ import annotations

import math

from bot.core.texts import Texts

__all__ = ["format_duration", "format_wait_estimate"]


def format_wait_estimate(seconds: float, texts: Texts, lang: str) -> str:
    """A customer's expected wait: rounded up to 5 minutes, at least 5; in hours from an hour and a half."""
    minutes = max(5, math.ceil(seconds / 300) * 5)
    if minutes < 90:
        return texts.get(lang, "eta_minutes", minutes=minutes)
    return texts.get(lang, "eta_hours", hours=round(minutes / 60))


def format_duration(seconds: float, texts: Texts, lang: str) -> str:
    """A duration for agents and supervisors: minutes, or hours and minutes from an hour."""
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return texts.get(lang, "minutes", n=minutes)
    return texts.get(lang, "hours_minutes", h=minutes // 60, m=minutes % 60)

"""Telegram's flood control: how many messages a bot may send per chat, per group and in total before a 429.

Off unless an emulator is given `FloodLimits`. The clock is injectable so that a test can move time instead of
sleeping through a window.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FloodControl", "FloodLimits"]


@dataclass(frozen=True)
class FloodLimits:
    """Telegram's documented limits (core.telegram.org/bots/faq); every number can be changed for a test."""

    per_chat_per_second: float = 1.0
    per_chat_burst: int = 3
    total_per_second: int = 30
    group_per_minute: int = 20

    def __post_init__(self) -> None:
        if self.per_chat_per_second <= 0 or self.per_chat_burst < 1:
            raise ValueError("per_chat_per_second must be positive and per_chat_burst at least 1")
        if self.total_per_second < 1 or self.group_per_minute < 1:
            raise ValueError("total_per_second and group_per_minute must be at least 1")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class FloodControl:
    """Decides whether one more message may go out now; a refusal comes with the seconds until it may."""

    def __init__(self, limits: FloodLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._chats: dict[int, _Bucket] = {}
        self._total: deque[float] = deque()
        self._groups: dict[int, deque[float]] = {}

    def admit(self, chat_id: int, *, is_group: bool) -> int | None:
        """Counts one message into ``chat_id`` and returns None, or returns ``retry_after`` and counts nothing."""
        now = self._clock()
        limits = self.limits
        waits: list[float] = []

        bucket = self._chats.get(chat_id) or _Bucket(float(limits.per_chat_burst), now)
        bucket.tokens = min(
            float(limits.per_chat_burst), bucket.tokens + (now - bucket.updated) * limits.per_chat_per_second
        )
        bucket.updated = now
        self._chats[chat_id] = bucket
        if bucket.tokens < 1.0:
            waits.append((1.0 - bucket.tokens) / limits.per_chat_per_second)

        _forget_before(self._total, now - 1.0)
        if len(self._total) >= limits.total_per_second:
            waits.append(self._total[-limits.total_per_second] + 1.0 - now)

        group = self._groups.setdefault(chat_id, deque()) if is_group else None
        if group is not None:
            _forget_before(group, now - 60.0)
            if len(group) >= limits.group_per_minute:
                waits.append(group[-limits.group_per_minute] + 60.0 - now)

        if waits:
            # Telegram always asks for a whole number of seconds, and never for zero.
            return max(1, math.ceil(max(waits) - 1e-9))
        bucket.tokens -= 1.0
        self._total.append(now)
        if group is not None:
            group.append(now)
        return None


def _forget_before(window: deque[float], cutoff: float) -> None:
    while window and window[0] <= cutoff:
        window.popleft()

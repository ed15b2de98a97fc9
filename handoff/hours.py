"""Support working hours in the support team's time zone: are agents expected now, and when do they return."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["WorkingHours"]

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_RULE = re.compile(r"^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class WorkingHours:
    """Opening hours per weekday, e.g. ``"Mon-Fri 09:00-21:00; Sat-Sun 10:00-18:00"``."""

    spec: str
    timezone: str
    days: tuple[tuple[tuple[time, time], ...], ...]  # Monday first; each day's opening intervals

    @classmethod
    def parse(cls, spec: str, timezone: str) -> WorkingHours:
        """Parse ``spec``; an empty spec means always open. Raises ValueError saying what to fix."""
        ZoneInfo(timezone)  # an unknown zone fails here, at start-up
        days: list[list[tuple[time, time]]] = [[] for _ in range(7)]
        if not spec.strip() or spec.strip().lower() in ("24/7", "always"):
            days = [[(time(0, 0), time(23, 59, 59))] for _ in range(7)]
        else:
            for rule in spec.split(";"):
                match = _RULE.match(rule)
                if not match:
                    raise ValueError(
                        f"working hours {rule.strip()!r} are not like 'Mon-Fri 09:00-18:00' (rules separated by ';')"
                    )
                first, last, h1, m1, h2, m2 = match.groups()
                start_day = _DAYS.index(first.lower())
                end_day = _DAYS.index((last or first).lower())
                span = range(start_day, end_day + 1) if start_day <= end_day else [*range(start_day, 7), *range(end_day + 1)]
                opening = time(int(h1), int(m1))
                closing = time(23, 59, 59) if (int(h2), int(m2)) == (24, 0) else time(int(h2), int(m2))
                for day in span:
                    days[day].append((opening, closing))
        return cls(spec, timezone, tuple(tuple(sorted(d)) for d in days))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        now = local.time()
        return any(start <= now < end for start, end in self.days[local.weekday()])

    def next_opening(self, moment: datetime) -> datetime | None:
        """When agents are next expected (``moment`` itself if open now); None if never."""
        local = moment.astimezone(self.zone)
        if self.is_open(moment):
            return local
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            for start, _end in self.days[day.weekday()]:
                candidate = datetime.combine(day, start, tzinfo=self.zone)
                if candidate > local:
                    return candidate
        return None

    def describe(self) -> str:
        """The hours as configured, with the zone: for messages to customers."""
        return f"{self.spec} ({self.timezone})" if self.spec.strip() else "24/7"

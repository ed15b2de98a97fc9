"""A signed-in member of staff, as every page of the workplace knows him."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StaffMember"]


@dataclass(frozen=True)
class StaffMember:
    user_id: int
    name: str
    role: str  # agent | supervisor | admin
    csrf: str
    lang: str
    on_shift: bool = False  # /online in Telegram or "on shift" here: auto-assignment gives him tickets

    @property
    def supervisor(self) -> bool:
        return self.role in ("supervisor", "admin")

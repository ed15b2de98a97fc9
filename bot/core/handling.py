"""The update being handled, so that handling it again after a crash repeats none of its side effects.

``UpdateOnce`` (``bot.telegram.middlewares``) opens a ``Handling`` around each update. Side effects that must happen once
per update (a message sent, a turn written to the conversation log) number themselves within it: the third
message this update sends is ``send:3``. A mark per numbered step is kept in Redis with the update; when a
process dies half-way and the update is handled again, the steps already marked are skipped (a message already
sent is not sent again; its stored result is returned instead), and the rest happen as they would have.
Handling an update is deterministic enough for this: the same question, the same index, the same replies.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["Handling", "current", "handling"]


@dataclass
class Handling:
    key: str  # the Redis hash of this update's marked steps
    ttl: int  # as long as a redelivery of the update may come
    _steps: Counter[str] = field(default_factory=Counter)

    def step(self, kind: str) -> str:
        """The name of the next step of this kind ("send:1", "send:2", ...)."""
        self._steps[kind] += 1
        return f"{kind}:{self._steps[kind]}"

    def first_time(self, kind: str) -> bool:
        """True the first time this try asks about ``kind``."""
        return self.step(kind).endswith(":1")


_current: ContextVar[Handling | None] = ContextVar("zabota_handling", default=None)


def current() -> Handling | None:
    """The update being handled by this task (and the tasks it started), if any."""
    return _current.get()


@contextlib.contextmanager
def handling(key: str, ttl: int) -> Iterator[Handling]:
    state = Handling(key, ttl)
    token = _current.set(state)
    try:
        yield state
    finally:
        _current.reset(token)

"""Phrasings the knowledge base learned from its agents, kept apart from the admins' source files.

When an agent resolves a customer's question with an article, the customer's words become one more way to
ask for that article. They are stored here, one JSON line each, and every index version built afterwards
searches them alongside the article's own phrasings.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kb_index.text import normalize_text

__all__ = ["LearnedPhrasing", "LearnedPhrasings"]

_PUNCTUATION = re.compile(r"[^\w\s]")


@dataclass(frozen=True)
class LearnedPhrasing:
    """A customer's question that an agent answered with ``article_id``."""

    article_id: str
    text: str
    lang: str = ""
    source: str = ""  # who taught it, e.g. "agent:12345"
    added_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


class LearnedPhrasings:
    """An append-only JSON-lines file of learned phrasings, safe to share between processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, phrasing: LearnedPhrasing) -> bool:
        """Store ``phrasing``; False when the article already has it (after normalisation) or it is empty."""
        key = _dedup_key(phrasing.text)
        if not key:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                for line in handle:
                    existing = _parse(line)
                    if existing and existing.article_id == phrasing.article_id and _dedup_key(existing.text) == key:
                        return False
                handle.seek(0, os.SEEK_END)
                handle.write(json.dumps(asdict(phrasing), ensure_ascii=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return True

    def all(self) -> list[LearnedPhrasing]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return [p for p in (_parse(line) for line in handle) if p is not None]
        except FileNotFoundError:
            return []


def _dedup_key(text: str) -> str:
    """Two phrasings that differ only in case, punctuation or spacing are the same phrasing."""
    return " ".join(_PUNCTUATION.sub(" ", normalize_text(text)).casefold().split())


def _parse(line: str) -> LearnedPhrasing | None:
    line = line.strip()
    if not line:
        return None
    try:
        data = json.loads(line)
        return LearnedPhrasing(**data)
    except (ValueError, TypeError):
        return None  # a line torn by a crash mid-write; the rest of the file is still good

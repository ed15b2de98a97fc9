"""What a knowledge base is made of: articles, each in one language, with the phrasings customers use.

An article is identified by its ``id``; translations of one article share the id and differ in ``lang``, so a
customer who writes in Ukrainian finds an article written in Russian and is shown the Ukrainian version when
there is one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

__all__ = ["Article", "SourceLocation"]


@dataclass(frozen=True)
class SourceLocation:
    """Where an article was read from, for messages that tell an admin which line to fix."""

    path: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)
class Article:
    """One language version of a knowledge-base article."""

    id: str
    title: str
    answer: str
    lang: str = ""
    questions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    source: SourceLocation | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        """The article's identity in an index: its id and its language."""
        return (self.id, self.lang)

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever anything a customer could see or be matched on changes (worked out once)."""
        digest = hashlib.sha256()
        for part in (self.id, self.lang, self.title, self.answer, *self.questions, "\x1f", *self.tags):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x1e")
        return digest.hexdigest()[:16]

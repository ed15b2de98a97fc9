"""Errors of the knowledge-base package.

    KbError
     ├── KbSourceError          a knowledge-base source has problems; carries every one, with file and line
     ├── ModelPreparationError  the encoder could not be prepared, verified or loaded
     ├── IndexUnavailableError  no index version has been built yet, or the current one cannot be read
     └── UnknownArticleError    an article id that the current index does not have
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "IndexUnavailableError",
    "KbError",
    "KbSourceError",
    "ModelPreparationError",
    "SourceProblem",
    "UnknownArticleError",
]


class KbError(Exception):
    """Base of every error raised by ``kb_index``."""


class ModelPreparationError(KbError):
    """The encoder model could not be prepared, verified or loaded."""


class IndexUnavailableError(KbError):
    """There is no usable index version to search."""


class UnknownArticleError(KbError):
    """The article id is not in the current index."""


@dataclass(frozen=True, order=True)
class SourceProblem:
    """One thing wrong in a knowledge-base source, where it is, and what to do about it."""

    path: str
    line: int  # 1-based; 0 when the problem concerns the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class KbSourceError(KbError):
    """The knowledge-base source cannot be used as it is; ``problems`` lists every problem found."""

    def __init__(self, problems: list[SourceProblem]) -> None:
        self.problems = sorted(problems)
        count = len(self.problems)
        header = f"The knowledge base has {count} problem{'s' if count != 1 else ''}; nothing was changed:"
        super().__init__("\n".join([header, *(f"  {p}" for p in self.problems)]))

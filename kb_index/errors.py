"""The root of every error Zabota raises on purpose, and the errors of the knowledge-base package.

``ZabotaError`` lives here, in the package every other one builds on, so that each package's errors can derive
from it without an import against the grain. The whole tree:

    ZabotaError
     ├── KbError                        (kb_index.errors)
     │    ├── KbSourceError             a knowledge-base source has problems; carries every one, with file and line
     │    ├── ModelPreparationError     the encoder could not be prepared, verified or loaded
     │    ├── IndexUnavailableError     no index version has been built yet, or the current one cannot be read
     │    └── UnknownArticleError       an article id that the current index does not have
     ├── IntentsError                   (intents.errors)
     │    ├── IntentDataError           a training-data file has problems; carries every one, with file and line
     │    └── IntentModelError          a saved intent model is missing, incomplete, or for another encoder
     ├── TextsError                     (bot.core.texts) a locale file is missing or disagrees with the others
     ├── TicketNotFound                 (handoff.desk) no such ticket; also a LookupError
     ├── DeliveryError                  (handoff.ports) what a channel answered the relay
     │    ├── DeliveryRefused           never deliverable (blocked bot, refused message)
     │    ├── DeliverLater              rate-limited: try again after some seconds
     │    └── ChannelUnreachable        the channel's servers cannot be reached now
     └── RasaApiError                   (bot.rasa.bridge) Rasa's HTTP API refused a call
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
    "ZabotaError",
]


class ZabotaError(Exception):
    """Base of every error Zabota raises on purpose (see the tree above)."""


class KbError(ZabotaError):
    """Base of every error raised by ``kb_index``."""


class ModelPreparationError(KbError):
    """The encoder model could not be prepared, verified or loaded."""


class IndexUnavailableError(KbError):
    """There is no usable index version to search."""


class UnknownArticleError(KbError, LookupError):
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

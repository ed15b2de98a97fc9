"""Errors of the intents package.

    IntentsError
     ├── IntentDataError    a training-data file has problems; carries every one, with file and line
     └── IntentModelError   a saved intent model is missing, incomplete, or was built for another encoder
"""

from __future__ import annotations

from kb_index.errors import SourceProblem, ZabotaError

__all__ = ["DataProblem", "IntentDataError", "IntentModelError", "IntentsError"]


class IntentsError(ZabotaError):
    """Base of every error raised by ``intents``."""


class IntentModelError(IntentsError):
    """A saved intent model cannot be used: retrain it (``IntentClassifier.load_or_train`` does)."""


# A problem in a training-data file is the same kind of thing as one in a knowledge-base source.
DataProblem = SourceProblem


class IntentDataError(IntentsError):
    """The training data cannot be used as it is; ``problems`` lists every problem found."""

    def __init__(self, problems: list[DataProblem]) -> None:
        self.problems = sorted(problems)
        count = len(self.problems)
        header = f"The intent training data has {count} problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([header, *(f"  {p}" for p in self.problems)]))

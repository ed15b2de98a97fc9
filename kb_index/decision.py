"""What the bot does with a search: answer, offer a few articles to choose from, or hand off to a person."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["DEFAULT_THRESHOLDS", "ArticleMatch", "Decision", "DecisionThresholds", "SearchResult", "decide"]


class Decision(StrEnum):
    ANSWER = "answer"  # confident: show the article
    CLARIFY = "clarify"  # unsure between a few: offer up to three to choose from
    HANDOFF = "handoff"  # nothing fits: a person should help


@dataclass(frozen=True)
class DecisionThresholds:
    """Confidence levels that separate the three decisions (see README: how the defaults were chosen)."""

    answer: float
    clarify: float
    # Two articles this close to each other are offered as a choice even above ``answer``.
    ambiguity_margin: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.clarify <= self.answer <= 1.0:
            raise ValueError(
                f"thresholds must satisfy 0 <= clarify <= answer <= 1, got clarify={self.clarify}, answer={self.answer}"
            )


# Levels of the calibrated confidence (the probability that the first article is right); see the README.
DEFAULT_THRESHOLDS = DecisionThresholds(answer=0.5, clarify=0.35)


@dataclass(frozen=True)
class ArticleMatch:
    """An article that matches the question, in the language it will be shown in."""

    article_id: str
    title: str
    score: float
    lang: str


@dataclass(frozen=True)
class SearchResult:
    """The knowledge base's answer to one question: the decision, its confidence and the best articles."""

    question: str
    normalized_question: str
    decision: Decision
    confidence: float
    matches: tuple[ArticleMatch, ...]
    index_version: str

    @property
    def best(self) -> ArticleMatch | None:
        return self.matches[0] if self.matches else None

    def to_dict(self) -> dict[str, object]:
        return {
            "question": self.question,
            "normalized_question": self.normalized_question,
            "decision": self.decision.value,
            "confidence": round(self.confidence, 4),
            "matches": [
                {"article_id": m.article_id, "title": m.title, "score": round(m.score, 4), "lang": m.lang}
                for m in self.matches
            ],
            "index_version": self.index_version,
        }


def decide(
    scores: list[float], thresholds: DecisionThresholds, confidence: float | None = None
) -> tuple[Decision, float]:
    """The decision for article scores sorted best first, and the confidence it rests on.

    ``confidence`` defaults to the best score.
    """
    if not scores:
        return Decision.HANDOFF, 0.0
    confidence = max(0.0, min(1.0, scores[0] if confidence is None else confidence))
    if confidence < thresholds.clarify:
        return Decision.HANDOFF, confidence
    if confidence < thresholds.answer:
        return Decision.CLARIFY, confidence
    if len(scores) > 1 and scores[0] - scores[1] < thresholds.ambiguity_margin:
        return Decision.CLARIFY, confidence
    return Decision.ANSWER, confidence

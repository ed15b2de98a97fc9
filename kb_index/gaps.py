"""Knowledge gaps: questions the knowledge base could not answer, grouped by meaning, largest groups first.

Each question is encoded (as a customer's question) and joins the closest existing group when it is similar
enough to the group's centre, or starts a new group. Admins read the groups to decide which articles to write.

Given the knowledge base, each question is also asked again of the version it serves now: one that version
answers (with another article than the one that did not help) is *answered now*, by an article written or
changed since; a group answered now entirely comes last, so what is still missing reads first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kb_index.decision import Decision, SearchResult
from kb_index.embedding_cache import EmbeddingCache, encode_cached
from kb_index.encoder import Encoder
from kb_index.errors import IndexUnavailableError
from kb_index.text import normalize_text

if TYPE_CHECKING:
    from kb_index.index import KbIndex
    from kb_index.service import KnowledgeBase

__all__ = ["Gap", "GapGroup", "answered_now", "group_gaps"]


@dataclass(frozen=True)
class Gap:
    """One unanswered question: what was asked, why it counts as a gap, in which language."""

    question: str
    reason: str  # handoff | clarify | not_helpful
    lang: str = ""
    closest_article: str = ""
    confidence: float = 0.0


@dataclass
class GapGroup:
    examples: list[str] = field(default_factory=list)
    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    langs: Counter[str] = field(default_factory=Counter)
    closest_articles: Counter[str] = field(default_factory=Counter)
    answered_now: int = 0  # questions the version served now answers
    answered_by: Counter[str] = field(default_factory=Counter)  # the titles of the articles that answer them
    answered_example: str = ""  # the first of them

    @property
    def still_open(self) -> int:
        """Questions of the group that the knowledge base still does not answer."""
        return self.count - self.answered_now

    def to_dict(self) -> dict[str, object]:
        return {
            "count": self.count,
            "examples": self.examples,
            "reasons": dict(self.reasons),
            "languages": dict(self.langs),
            "closest_article": self.closest_articles.most_common(1)[0][0] if self.closest_articles else None,
            "answered_now": self.answered_now,
            "answered_by": self.answered_by.most_common(1)[0][0] if self.answered_by else None,
        }


def group_gaps(
    encoder: Encoder,
    gaps: Sequence[Gap],
    *,
    cache: EmbeddingCache | None = None,
    similarity: float = 0.88,
    examples: int = 3,
    knowledge: KnowledgeBase | None = None,
) -> list[GapGroup]:
    """Groups of similar questions, those with the most questions still open first (then the largest); within a
    group, distinct examples in order of arrival. ``knowledge``: the knowledge base whose served version tells
    which questions are answered now (without it, none is)."""
    texts = [normalize_text(g.question) for g in gaps]
    kept = [i for i, text in enumerate(texts) if text]
    if not kept:
        return []
    vectors, _ = encode_cached(encoder, cache, [texts[i] for i in kept], "query")
    served = None
    if knowledge is not None:
        try:
            served = knowledge.index  # one version for the whole report
        except IndexUnavailableError:
            knowledge = None  # nothing is served yet: nothing is answered now
    centres: list[np.ndarray] = []
    groups: list[GapGroup] = []
    sums: list[np.ndarray] = []
    searched: dict[tuple[str, str], SearchResult] = {}
    for row, i in enumerate(kept):
        vector = vectors[row]
        best, best_score = -1, similarity
        for number, centre in enumerate(centres):
            score = float(centre @ vector)
            if score >= best_score:
                best, best_score = number, score
        if best < 0:
            centres.append(vector.copy())
            sums.append(vector.copy())
            groups.append(GapGroup())
            best = len(groups) - 1
        else:
            sums[best] += vector
            centres[best] = sums[best] / np.linalg.norm(sums[best])
        group = groups[best]
        gap = gaps[i]
        group.count += 1
        group.reasons[gap.reason] += 1
        group.langs[gap.lang or "?"] += 1
        if gap.closest_article:
            group.closest_articles[gap.closest_article] += 1
        if len(group.examples) < examples and gap.question.strip() not in group.examples:
            group.examples.append(gap.question.strip())
        if knowledge is not None and served is not None:
            _count_if_answered_now(group, gap, texts[i], vector, knowledge, served, searched)
    return sorted(groups, key=lambda g: (-g.still_open, -g.count))


def _count_if_answered_now(
    group: GapGroup,
    gap: Gap,
    normalized: str,
    vector: np.ndarray,
    knowledge: KnowledgeBase,
    served: KbIndex,
    searched: dict[tuple[str, str], SearchResult],
) -> None:
    """Count ``gap`` in ``group`` as answered now if the served version answers it, with another article than
    the one that did not help (``searched``: results already found, as a question asked many times is searched
    once)."""
    key = (normalized, gap.lang)
    now = searched.get(key)
    if now is None:
        now = searched[key] = knowledge.result_for_vector(
            gap.question, normalized, vector, lang=gap.lang or None, limit=1, index=served
        )
    if now.decision is not Decision.ANSWER or now.best is None:
        return
    if gap.reason == "not_helpful" and now.best.article_id == gap.closest_article:
        return
    group.answered_now += 1
    group.answered_by[now.best.title] += 1
    group.answered_example = group.answered_example or gap.question.strip()


def answered_now(groups: Sequence[GapGroup]) -> dict[str, object] | None:
    """How many of the groups' questions the knowledge base answers now, with an example of the group that has
    the most of them and the article that answers it (None when it answers none)."""
    count = sum(g.answered_now for g in groups)
    if not count:
        return None
    best = max(groups, key=lambda g: g.answered_now)
    return {"count": count, "example": best.answered_example[:80], "title": best.answered_by.most_common(1)[0][0]}

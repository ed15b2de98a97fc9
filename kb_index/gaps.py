"""Knowledge gaps: questions the knowledge base could not answer, grouped by meaning, largest groups first.

Each question is encoded (as a customer's question) and joins the closest existing group when it is similar
enough to the group's centre, or starts a new group. Admins read the groups to decide which articles to write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from kb_index.embedding_cache import EmbeddingCache, encode_cached
from kb_index.encoder import Encoder
from kb_index.text import normalize_text

__all__ = ["Gap", "GapGroup", "group_gaps"]


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

    def to_dict(self) -> dict[str, object]:
        return {
            "count": self.count,
            "examples": self.examples,
            "reasons": dict(self.reasons),
            "languages": dict(self.langs),
            "closest_article": self.closest_articles.most_common(1)[0][0] if self.closest_articles else None,
        }


def group_gaps(
    encoder: Encoder,
    gaps: Sequence[Gap],
    *,
    cache: EmbeddingCache | None = None,
    similarity: float = 0.88,
    examples: int = 3,
) -> list[GapGroup]:
    """Groups of similar questions, largest first; within a group, distinct examples in order of arrival."""
    texts = [normalize_text(g.question) for g in gaps]
    kept = [i for i, text in enumerate(texts) if text]
    if not kept:
        return []
    vectors, _ = encode_cached(encoder, cache, [texts[i] for i in kept], "query")
    centres: list[np.ndarray] = []
    groups: list[GapGroup] = []
    sums: list[np.ndarray] = []
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
    return sorted(groups, key=lambda g: -g.count)

"""The confidence the bot acts on: the probability that the article it would show first is the right one.

A raw similarity means different things on different knowledge bases (on one every question scores above 0.79,
on another 0.72 is already a good match), so thresholds on it do not transfer. Each index version therefore
carries a ``ConfidenceModel``: a logistic map from a few signals of a search to a probability, fitted when the
version is built on questions made from the knowledge base itself (see ``kb_index.calibration``). One threshold
on that probability means the same on every knowledge base.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["FALLBACK_MODEL", "ConfidenceModel", "Signals"]

MAX_MARGIN = 0.3  # a lead larger than this says nothing more
RRF_K = 5  # reciprocal-rank fusion: 1 / (RRF_K + rank)
NEIGHBOURS = 10  # nearest phrasings and answers whose mean similarity is a signal
OLDEST_SIGNALS = 6  # signals of the oldest stored models that still load


@dataclass(frozen=True)
class Signals:
    """What one search says about how well its best article fits the question."""

    score: float  # the best article's score (similarity blended with BM25 and the classifier)
    margin: float  # how far ahead of the second article it is
    lexical: float  # its BM25 score relative to the best BM25 score of any article (0..1; 0 without words in common)
    classifier: float  # the article classifier's probability for the best three articles (0 without a classifier)
    lexical_strength: float = 0.0  # log(1 + the best BM25 score of any article, stop words left out): how much the words say at all
    agreement: float = 0.0  # reciprocal-rank fusion of the best article's dense and BM25 ranks (1: first in both)
    neighbours: float = 0.0  # mean similarity of the question's NEIGHBOURS nearest phrasings and answers

    NAMES = ("score", "margin", "lexical", "classifier", "lexical_strength", "agreement", "neighbours")

    def vector(self) -> np.ndarray:
        return np.array(
            [
                self.score, self.margin, self.lexical, self.classifier, self.lexical_strength, self.agreement,
                self.neighbours,
            ],
            dtype=np.float64,
        )

    @classmethod
    def of(
        cls,
        best: float,
        second: float | None,
        lexical: float = 0.0,
        classifier: float = 0.0,
        *,
        lexical_best: float = 0.0,
        dense_rank: int = 1,
        lexical_rank: int = 0,
        neighbours: float = 0.0,
    ) -> Signals:
        """Signals from the best article's score and the second's (None when there is no second article), and the
        best article's rank by similarity alone and by BM25 alone (0: BM25 does not know it)."""
        lead = best - second if second is not None and math.isfinite(second) else MAX_MARGIN
        fusion = 1.0 / (RRF_K + dense_rank) + (1.0 / (RRF_K + lexical_rank) if lexical_rank > 0 else 0.0)
        return cls(
            float(best),
            min(max(lead, 0.0), MAX_MARGIN),
            min(max(lexical, 0.0), 1.0),
            float(classifier),
            math.log1p(max(lexical_best, 0.0)),
            fusion * (RRF_K + 1) / 2,
            float(neighbours),
        )


# Which signals say whether a question is covered at all, and which say whether the first of the articles is the
# right one once it is.
SCOPE_SIGNALS = ("score", "lexical_strength", "agreement", "classifier", "neighbours")
RANK_SIGNALS = ("score", "margin", "lexical", "classifier")


@dataclass(frozen=True)
class ConfidenceModel:
    """``P(first article right) = P(the question is covered) * P(first article right | covered)``.

    Each factor is a logistic function of standardised signals:
    ``sigmoid(bias + sum(weights * (signals - mean) / scale))``.
    """

    scope_weights: tuple[float, ...]
    scope_bias: float
    rank_weights: tuple[float, ...]
    rank_bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def probability(self, signals: Signals) -> float:
        return float(self.probabilities(signals.vector().reshape(1, -1))[0])

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        x = (rows - np.asarray(self.mean)) / np.asarray(self.scale)
        scope = _sigmoid(self.scope_bias + x @ np.asarray(self.scope_weights))
        rank = _sigmoid(self.rank_bias + x @ np.asarray(self.rank_weights))
        return scope * rank

    @classmethod
    def fit(
        cls, rows: np.ndarray, covered: np.ndarray, right: np.ndarray, sample_weight: np.ndarray, *, l2: float = 1e-2
    ) -> ConfidenceModel:
        """Fit both factors: ``covered`` marks questions the knowledge base answers, ``right`` those whose first
        article was the right one (the second factor is fitted on covered questions only).

        Every signal can only raise the confidence (a higher score, a larger lead, more words in common never
        make the first article less likely right): a signal whose weight comes out negative on this knowledge
        base's questions is dropped and the rest fitted again, so that a small knowledge base cannot learn an
        accident of its few questions.
        """
        mean = rows.mean(axis=0)
        scale = rows.std(axis=0)
        scale[scale < 1e-6] = 1.0
        x = (rows - mean) / scale
        varies = rows.std(axis=0) >= 1e-6  # a signal that never changes (no classifier) gets no weight
        scope_bias, scope = _monotone_logistic(x, covered, sample_weight, _mask(SCOPE_SIGNALS) & varies, l2)
        inside = covered > 0
        rank_bias, rank = _monotone_logistic(
            x[inside], right[inside], sample_weight[inside], _mask(RANK_SIGNALS) & varies, l2
        )
        return cls(
            tuple(map(float, scope)), scope_bias, tuple(map(float, rank)), rank_bias,
            tuple(map(float, mean)), tuple(map(float, scale)),
        )

    def to_dict(self) -> dict[str, object]:
        def rounded(values: tuple[float, ...]) -> list[float]:
            return [round(v, 6) for v in values]

        return {
            "signals": list(Signals.NAMES),
            "scope_weights": rounded(self.scope_weights),
            "scope_bias": round(self.scope_bias, 6),
            "rank_weights": rounded(self.rank_weights),
            "rank_bias": round(self.rank_bias, 6),
            "mean": rounded(self.mean),
            "scale": rounded(self.scale),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ConfidenceModel:
        # A model stored before a signal was added lists fewer numbers: the new signals get no weight (and a
        # scale of 1, so that nothing is divided by zero).
        padding = {"scale": 1.0}

        def floats(key: str) -> tuple[float, ...]:
            values = data[key]
            if not isinstance(values, list) or not OLDEST_SIGNALS <= len(values) <= len(Signals.NAMES):
                raise ValueError(
                    f"the confidence model's {key!r} must list {OLDEST_SIGNALS} to {len(Signals.NAMES)} numbers"
                )
            missing = len(Signals.NAMES) - len(values)
            return tuple(float(v) for v in values) + (padding.get(key, 0.0),) * missing

        return cls(
            floats("scope_weights"), float(data["scope_bias"]),  # type: ignore[arg-type]
            floats("rank_weights"), float(data["rank_bias"]),  # type: ignore[arg-type]
            floats("mean"), floats("scale"),
        )


def _mask(names: tuple[str, ...]) -> np.ndarray:
    return np.array([name in names for name in Signals.NAMES])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


def _monotone_logistic(
    x: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray, used: np.ndarray, l2: float
) -> tuple[float, np.ndarray]:
    """Weighted logistic regression on the ``used`` columns with no negative weight (the most negative one is
    dropped and the rest fitted again, until none is)."""
    w = sample_weight / sample_weight.sum()
    used = used.copy()
    weights = np.zeros(x.shape[1])
    bias = 0.0
    for _ in range(x.shape[1] + 1):
        bias, fitted = _logistic(x[:, used], labels.astype(np.float64), w, l2, 50)
        weights = np.zeros(x.shape[1])
        weights[used] = fitted
        if not (weights < 0).any():
            break
        used[int(np.argmin(weights))] = False
    return bias, weights


def _logistic(x: np.ndarray, labels: np.ndarray, w: np.ndarray, l2: float, iterations: int) -> tuple[float, np.ndarray]:
    design = np.hstack([np.ones((len(x), 1)), x])
    beta = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -40.0, 40.0)))
        gradient = design.T @ (w * (p - labels)) + penalty * beta
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if float(np.abs(step).max()) < 1e-7:
            break
    return float(beta[0]), beta[1:]


# For index versions built before versions calibrated themselves: the score alone, centred where such versions
# of the sample knowledge base changed from offering a choice to handing off. A reindex replaces it.
FALLBACK_MODEL = ConfidenceModel(
    scope_weights=(12.0, 0, 0, 0, 0, 0, 0), scope_bias=-1.4, rank_weights=(0, 0, 0, 0, 0, 0, 0), rank_bias=5.0,
    mean=(0.72, 0, 0, 0, 0, 0, 0), scale=(0.5, 1, 1, 1, 1, 1, 1),
)

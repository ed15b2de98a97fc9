"""Self-calibration of an index version: what its confidence means, learned from the knowledge base itself.

When a version is built, the knowledge base is questioned as customers would question it, with answers known:

- *held-out phrasings*: one phrasing of an article is removed from the index and asked; the article should
  come first (in scope);
- *near-miss questions*: whole articles are removed in turn (a fifth at a time) and their phrasings asked; no
  article is right, a person should help (what a customer asks about a topic of this business the knowledge
  base does not cover);
- *off-topic questions*: a small set shipped with Zabota in Russian, Ukrainian and English (weather, recipes,
  homework...).

A logistic model (``kb_index.confidence``) is fitted on the signals of those searches, weighted so that
near-miss and off-topic questions make up ``OUT_OF_SCOPE_SHARE`` of what customers ask, and stored in the
version's manifest with a report of what the bot will do on this knowledge base.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import cast

import faiss
import numpy as np

from kb_index.articles import Article
from kb_index.classifier import ArticleClassifier
from kb_index.confidence import ConfidenceModel, Signals
from kb_index.decision import Decision, DecisionThresholds, decide
from kb_index.embedding_cache import EmbeddingCache, encode_cached
from kb_index.encoder import Encoder
from kb_index.index import EntryKind, KbIndex, Ranking, ScoringWeights
from kb_index.lexical import LexicalIndex
from kb_index.store import Manifest
from kb_index.text import normalize_text

__all__ = ["Calibration", "CalibrationReport", "CalibrationSet", "calibrate_version", "load_off_topic"]

MIN_ARTICLES = 5  # fewer articles cannot be left out in turn; such a version keeps the fallback model
OUT_OF_SCOPE_SHARE = 0.3  # of customers' questions, the share the knowledge base cannot answer
OFF_TOPIC_SHARE = 0.5  # of those, the share of questions on nothing to do with the business (the shipped set)
FOLDS = 5  # articles left out a fifth at a time
MAX_HELD_OUT_ARTICLES = 100  # per fold, for large knowledge bases
MAX_IN_SCOPE = 400  # held-out phrasings asked per fold
PHRASINGS_PER_LEFT_OUT_ARTICLE = 2
# A held-out phrasing takes its translations and near-copies out of the index with it (similarity at least
# this): a customer rarely writes an article's own words, and a question whose Ukrainian twin stayed in the
# index would be found too easily.
NEAR_COPY = 0.95


@dataclass(frozen=True)
class CalibrationSet:
    """Signals of the searches made while calibrating, with what the right outcome was."""

    signals: np.ndarray  # (n, len(Signals.NAMES))
    right: np.ndarray  # 1 where the first article is the right one
    group: np.ndarray  # 0 held-out phrasing, 1 near-miss, 2 off-topic
    scores: list[list[float]]  # article scores, best first (for the ambiguity rule of the decision)
    encoded: int = 0  # questions that were not cached and had to be encoded

    GROUPS = ("held_out_phrasings", "near_miss", "off_topic")

    def weights(self) -> np.ndarray:
        counts = np.bincount(self.group, minlength=3).astype(np.float64)
        share = np.array([1 - OUT_OF_SCOPE_SHARE, OUT_OF_SCOPE_SHARE * (1 - OFF_TOPIC_SHARE), OUT_OF_SCOPE_SHARE * OFF_TOPIC_SHARE])
        if counts[2] == 0:
            share[1] += share[2]
        per_item = np.divide(share, counts, out=np.zeros(3), where=counts > 0)
        return per_item[self.group]


@dataclass(frozen=True)
class GroupOutcome:
    questions: int
    answered: float  # shares of the group
    clarified: float
    handed_off: float
    answered_right: float  # answered with the right article (held-out phrasings only)


@dataclass(frozen=True)
class CalibrationReport:
    """What the bot will do on this knowledge base with the thresholds in force when it was built."""

    held_out_phrasings: GroupOutcome
    near_miss: GroupOutcome
    off_topic: GroupOutcome
    thresholds: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def figures(self) -> dict[str, int]:
        """Percentages (and counts) for a message to an admin."""
        held, near, off = self.held_out_phrasings, self.near_miss, self.off_topic

        def pct(value: float) -> int:
            return round(100 * value)

        return {
            "held": held.questions, "answered": pct(held.answered), "right": pct(held.answered_right),
            "clarified": pct(held.clarified), "handed": pct(held.handed_off), "near": near.questions,
            "near_handed": pct(near.handed_off), "near_wrong": pct(near.answered), "off_handed": pct(off.handed_off),
        }

    def describe(self) -> list[str]:
        def pct(value: float) -> str:
            return f"{round(100 * value)} %"

        held, near, off = self.held_out_phrasings, self.near_miss, self.off_topic
        lines = [
            f"Of {held.questions} phrasings asked with the phrasing removed from the index: {pct(held.answered)} "
            f"answered ({pct(held.answered_right)} with the right article), {pct(held.clarified)} offered a choice, "
            f"{pct(held.handed_off)} handed to a person.",
        ]
        if near.questions:
            lines.append(
                f"Of {near.questions} near-miss questions (their article removed): {pct(near.handed_off)} handed to "
                f"a person, {pct(near.clarified)} offered a choice, {pct(near.answered)} answered with a wrong article."
            )
        if off.questions:
            lines.append(f"Of {off.questions} off-topic questions: {pct(off.handed_off)} handed to a person.")
        return lines

    @classmethod
    def of_version(cls, manifest: Manifest) -> CalibrationReport | None:
        """The report stored with an index version (None: too few articles, or built before versions had one)."""
        calibration = manifest.data.get("calibration") or {}
        report = calibration.get("report") if isinstance(calibration, dict) else None
        return cls.from_dict(report) if isinstance(report, dict) else None

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> CalibrationReport:
        def group(name: str) -> GroupOutcome:
            return GroupOutcome(**data[name])  # type: ignore[arg-type]

        return cls(group("held_out_phrasings"), group("near_miss"), group("off_topic"), dict(cast(dict[str, float], data["thresholds"])))


def load_off_topic() -> list[str]:
    """The shipped off-topic questions (ru, uk, en), one a line."""
    text = resources.files("kb_index").joinpath("data/off_topic.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@dataclass(frozen=True)
class Calibration:
    """What calibrating a version produced: its confidence model, what the bot will do, texts newly encoded."""

    model: ConfidenceModel
    report: CalibrationReport
    encoded: int


def calibrate_version(
    encoder: Encoder,
    cache: EmbeddingCache | None,
    articles: Sequence[Article],
    texts: Sequence[str],
    entry_article: np.ndarray,
    entry_kind: np.ndarray,
    vectors: np.ndarray,
    *,
    weights: ScoringWeights,
    thresholds: DecisionThresholds,
    classifier_vectors: np.ndarray | None,
) -> Calibration | None:
    """The confidence model of a version being built and what it will do, or None for a tiny knowledge base.

    ``classifier_vectors``: where the version has an article classifier, the phrasings encoded as questions
    (one row per entry; answers' rows unused), so that each view trains its own classifier without the
    phrasings it is asked.
    """
    article_count = int(entry_article.max()) + 1 if entry_article.size else 0
    if article_count < MIN_ARTICLES:
        return None
    data = collect(
        encoder, cache, articles, texts, entry_article, entry_kind, vectors,
        weights=weights, classifier_vectors=classifier_vectors,
    )
    model = ConfidenceModel.fit(data.signals, (data.group == 0).astype(np.float64), data.right, data.weights())
    return Calibration(model, report(model, data, thresholds), data.encoded)


def collect(
    encoder: Encoder,
    cache: EmbeddingCache | None,
    articles: Sequence[Article],
    texts: Sequence[str],
    entry_article: np.ndarray,
    entry_kind: np.ndarray,
    vectors: np.ndarray,
    *,
    weights: ScoringWeights,
    classifier_vectors: np.ndarray | None,
) -> CalibrationSet:
    """Search the knowledge base with its own phrasings and the off-topic questions (see the module's doc)."""
    article_count = int(entry_article.max()) + 1
    rng = np.random.default_rng(article_count)
    phrasings: list[list[int]] = [[] for _ in range(article_count)]
    for row, kind in enumerate(entry_kind):
        if kind != EntryKind.ANSWER:
            phrasings[int(entry_article[row])].append(row)
    with_phrasings = [a for a in range(article_count) if phrasings[a]]
    order = rng.permutation(with_phrasings)
    folds = min(FOLDS, len(order))
    per_fold = min(math.ceil(len(order) / folds), MAX_HELD_OUT_ARTICLES)
    plan: list[tuple[np.ndarray, list[int], list[int]]] = []  # (left-out articles, in-scope rows, near-miss rows)
    for k in range(folds):
        left_out = order[k * per_fold : (k + 1) * per_fold]
        if left_out.size == 0:
            break
        out_set = {int(a) for a in left_out}
        candidates = [a for a in with_phrasings if a not in out_set]
        asked = rng.permutation(candidates)[:MAX_IN_SCOPE]
        in_scope = [int(rng.choice(_preferred(phrasings[a], entry_kind))) for a in asked]
        near = [row for a in left_out for row in phrasings[int(a)][:PHRASINGS_PER_LEFT_OUT_ARTICLE]]
        plan.append((left_out, in_scope, near))

    off_topic = [t for t in (normalize_text(q) for q in load_off_topic()) if t]
    asked_rows = sorted({row for _, ins, near in plan for row in (*ins, *near)})
    if classifier_vectors is not None:
        off_vectors, encoded = encode_cached(encoder, cache, off_topic, "query")
        vector_of = {row: classifier_vectors[row] for row in asked_rows}
    else:
        query_texts = [texts[row] for row in asked_rows] + off_topic
        query_vectors, encoded = encode_cached(encoder, cache, query_texts, "query")
        vector_of = {row: query_vectors[i] for i, row in enumerate(asked_rows)}
        off_vectors = query_vectors[len(asked_rows) :]

    rows: list[np.ndarray] = []
    right: list[int] = []
    group: list[int] = []
    scores: list[list[float]] = []
    for k, (left_out, in_scope, near) in enumerate(plan):
        removed = np.zeros(len(entry_article), dtype=bool)
        removed[np.isin(entry_article, left_out)] = True
        for row in in_scope:
            siblings = np.asarray(phrasings[int(entry_article[row])])
            removed[siblings[vectors[siblings] @ vectors[row] >= NEAR_COPY]] = True
        view = _view(
            articles, texts, entry_article, entry_kind, vectors, removed, classifier_vectors=classifier_vectors
        )
        for row, kind in [(row, 0) for row in in_scope] + [(row, 1) for row in near]:
            ranking = view.score(vector_of[row], weights, 3, texts[row])
            _record(ranking, rows, right, group, scores, kind,
                    kind == 0 and bool(ranking.matches) and ranking.matches[0][0] == view.article_ids[entry_article[row]])
        if k == 0:
            for text, vector in zip(off_topic, off_vectors):
                _record(view.score(vector, weights, 3, text), rows, right, group, scores, 2, False)
    return CalibrationSet(np.vstack(rows), np.asarray(right), np.asarray(group), scores, encoded)


def report(model: ConfidenceModel, data: CalibrationSet, thresholds: DecisionThresholds) -> CalibrationReport:
    probabilities = model.probabilities(data.signals)
    decisions = [decide(s, thresholds, float(p))[0] for s, p in zip(data.scores, probabilities)]

    def outcome(g: int) -> GroupOutcome:
        members = [i for i in range(len(decisions)) if data.group[i] == g]
        n = len(members)

        def share(decision: Decision, *, right: bool = False) -> float:
            hits = sum(1 for i in members if decisions[i] is decision and (not right or data.right[i]))
            return round(hits / n, 4) if n else 0.0

        return GroupOutcome(
            n, share(Decision.ANSWER), share(Decision.CLARIFY), share(Decision.HANDOFF),
            share(Decision.ANSWER, right=True),
        )

    return CalibrationReport(
        outcome(0), outcome(1), outcome(2),
        {"answer": thresholds.answer, "clarify": thresholds.clarify},
    )


def _preferred(rows: list[int], entry_kind: np.ndarray) -> list[int]:
    """The phrasings to hold out: alternative phrasings where an article has them, so its title stays."""
    others = [r for r in rows if entry_kind[r] != EntryKind.TITLE]
    return others or rows


def _record(
    ranking: Ranking, rows: list[np.ndarray], right: list[int], group: list[int], scores: list[list[float]],
    kind: int, is_right: bool,
) -> None:
    signals = ranking.signals or Signals.of(0.0, None)
    rows.append(signals.vector())
    right.append(int(is_right))
    group.append(kind)
    scores.append([s for _, s in ranking.matches])


def _view(
    articles: Sequence[Article],
    texts: Sequence[str],
    entry_article: np.ndarray,
    entry_kind: np.ndarray,
    vectors: np.ndarray,
    removed: np.ndarray,
    *,
    classifier_vectors: np.ndarray | None,
) -> KbIndex:
    """The version as it would be without the ``removed`` entries (their articles' other entries stay)."""
    keep = np.flatnonzero(~removed)
    kept_vectors = np.ascontiguousarray(vectors[keep], dtype=np.float32)
    flat = faiss.IndexFlatIP(kept_vectors.shape[1])
    flat.add(kept_vectors)
    article_count = int(entry_article.max()) + 1
    documents: list[list[str]] = [[] for _ in range(article_count)]
    for row in keep:
        documents[int(entry_article[row])].append(texts[int(row)])
    lexical = LexicalIndex.build(["\n".join(parts) for parts in documents])
    classifier = None
    if classifier_vectors is not None:
        train = keep[entry_kind[keep] != EntryKind.ANSWER]
        if train.size:
            classifier = ArticleClassifier.train(
                classifier_vectors[train], entry_article[train].astype(np.int64), article_count
            )
    return KbIndex(
        Manifest("calibrating", {}), list(articles), entry_article[keep], entry_kind[keep], kept_vectors, flat, lexical, classifier, None
    )

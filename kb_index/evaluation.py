"""Measure search and the hand-off decision on a knowledge base and a file of real questions.

Queries file, one JSON object a line: ``{"query": str, "expected": [article id, ...], "lang": str}``;
``expected: []`` marks a question the knowledge base cannot answer, where handing off is right.
Metrics: top-1, recall@3 and MRR over in-scope questions; with the decision policy, the accuracy of the
answers given, hand-off precision/recall/F1 over out-of-scope questions, and AUROC of the confidence; and how
well the confidence is calibrated: the expected calibration error (ECE) and a reliability table that compares,
band by band, the confidence with how often the first article really was right.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from kb_index.articles import Article
from kb_index.builder import BuildOptions, build_version
from kb_index.decision import Decision, DecisionThresholds, decide
from kb_index.embedding_cache import EmbeddingCache, encode_cached
from kb_index.encoder import Encoder
from kb_index.errors import KbSourceError, SourceProblem
from kb_index.index import KbIndex, ScoringWeights
from kb_index.learned import LearnedPhrasing
from kb_index.sources import load_articles
from kb_index.store import IndexStore
from kb_index.text import normalize_text
from kb_index.tuning import TuningOptions, tune_encoder

__all__ = [
    "EvalOptions",
    "EvalQuery",
    "Outcome",
    "calibrate",
    "compute_metrics",
    "evaluate",
    "load_queries",
    "run_queries",
    "split_folds",
]

RANK_DEPTH = 10
METRIC_KEYS = (
    "queries",
    "in_scope",
    "out_of_scope",
    "top1",
    "recall_at_3",
    "mrr",
    "answered_accuracy",
    "handoff_precision",
    "handoff_recall",
    "handoff_f1",
    "auroc",
)


@dataclass(frozen=True)
class EvalQuery:
    query: str
    expected: tuple[str, ...]
    lang: str = ""

    @property
    def in_scope(self) -> bool:
        return bool(self.expected)


@dataclass(frozen=True)
class Outcome:
    """What the search returned for one question: article ids best first, with their scores."""

    ranking: tuple[str, ...]
    scores: tuple[float, ...]
    confidence: float | None = None  # defaults to the best score


def load_queries(path: Path) -> list[EvalQuery]:
    problems: list[SourceProblem] = []
    queries: list[EvalQuery] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KbSourceError([SourceProblem(str(path), 0, f"cannot be read as UTF-8 text ({exc})")]) from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            query = data["query"]
            expected = data.get("expected", [])
            if not isinstance(query, str) or not isinstance(expected, list):
                raise TypeError("'query' must be text and 'expected' a list of article ids")
            queries.append(EvalQuery(query, tuple(str(e) for e in expected), str(data.get("lang", ""))))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(
                SourceProblem(str(path), number, f'is not a query line {{"query", "expected", "lang"}} ({exc})')
            )
    if problems:
        raise KbSourceError(problems)
    if not queries:
        raise KbSourceError([SourceProblem(str(path), 0, "has no queries")])
    return queries


def run_queries(
    encoder: Encoder,
    index: KbIndex,
    weights: ScoringWeights,
    queries: Sequence[EvalQuery],
    cache: EmbeddingCache | None = None,
) -> list[Outcome]:
    """Search every question in ``index`` (question vectors cached like the articles')."""
    normalized = [normalize_text(q.query) for q in queries]
    present = [i for i, text in enumerate(normalized) if text]
    vectors, _ = encode_cached(encoder, cache, [normalized[i] for i in present], "query")
    outcomes = [Outcome((), ())] * len(queries)
    for row, i in enumerate(present):
        ranking = index.score(vectors[row], weights, RANK_DEPTH, normalized[i])
        outcomes[i] = Outcome(
            tuple(a for a, _ in ranking.matches), tuple(s for _, s in ranking.matches), ranking.confidence
        )
    return outcomes


Thresholds = DecisionThresholds | Sequence[DecisionThresholds]


def compute_metrics(
    queries: Sequence[EvalQuery], outcomes: Sequence[Outcome], thresholds: Thresholds
) -> dict[str, object]:
    """The metrics over all queries, and ``by_lang`` with the same metrics per language.

    ``thresholds`` is one set for every query, or one set per query (cross-validated thresholds).
    """
    per_query = _per_query(thresholds, len(queries))
    result = _metrics(queries, outcomes, per_query)
    by_lang: dict[str, list[int]] = defaultdict(list)
    for i, q in enumerate(queries):
        by_lang[q.lang or "?"].append(i)
    result["by_lang"] = {
        lang: _metrics([queries[i] for i in idx], [outcomes[i] for i in idx], [per_query[i] for i in idx])
        for lang, idx in sorted(by_lang.items())
    }
    return result


def _per_query(thresholds: Thresholds, count: int) -> list[DecisionThresholds]:
    if isinstance(thresholds, DecisionThresholds):
        return [thresholds] * count
    if len(thresholds) != count:
        raise ValueError("one set of thresholds per query is needed")
    return list(thresholds)


def _metrics(
    queries: Sequence[EvalQuery], outcomes: Sequence[Outcome], thresholds: Thresholds
) -> dict[str, object]:
    per_query = _per_query(thresholds, len(queries))
    in_scope = [i for i, q in enumerate(queries) if q.in_scope]
    out_scope = [i for i, q in enumerate(queries) if not q.in_scope]
    decisions: list[Decision] = []
    confidences: list[float] = []
    for outcome, levels in zip(outcomes, per_query):
        decision, confidence = decide(list(outcome.scores), levels, outcome.confidence)
        decisions.append(decision)
        confidences.append(confidence)

    def rank(i: int) -> int:
        expected = set(queries[i].expected)
        for position, article_id in enumerate(outcomes[i].ranking, start=1):
            if article_id in expected:
                return position
        return 0

    ranks = [rank(i) for i in in_scope]
    correct_top1 = {i for i, r in zip(in_scope, ranks) if r == 1}
    answered = [i for i, d in enumerate(decisions) if d is Decision.ANSWER]
    handed_off = [i for i, d in enumerate(decisions) if d is Decision.HANDOFF]
    counts = {d.value: sum(1 for x in decisions if x is d) for d in Decision}
    metrics: dict[str, object] = {
        "queries": len(queries),
        "in_scope": len(in_scope),
        "out_of_scope": len(out_scope),
        "top1": _ratio(len(correct_top1), len(in_scope)),
        "recall_at_3": _ratio(sum(1 for r in ranks if 1 <= r <= 3), len(in_scope)),
        "mrr": _round(sum(1.0 / r for r in ranks if r) / len(in_scope)) if in_scope else None,
        "answered_accuracy": _ratio(sum(1 for i in answered if i in correct_top1), len(answered)),
        "handoff_precision": None,
        "handoff_recall": None,
        "handoff_f1": None,
        "auroc": None,
        # Larson et al.'s "in-scope accuracy": right article and not handed off.
        "in_scope_accuracy": _ratio(
            sum(1 for i in in_scope if i in correct_top1 and decisions[i] is not Decision.HANDOFF), len(in_scope)
        ),
        "decisions": counts,
        "calibration": _calibration(confidences, [i in correct_top1 for i in range(len(queries))]),
    }
    if out_scope:
        true_handoffs = sum(1 for i in handed_off if not queries[i].in_scope)
        precision = true_handoffs / len(handed_off) if handed_off else 0.0
        recall = true_handoffs / len(out_scope)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        metrics.update(
            handoff_precision=_round(precision),
            handoff_recall=_round(recall),
            handoff_f1=_round(f1),
            auroc=_round(_auroc([confidences[i] for i in in_scope], [confidences[i] for i in out_scope]))
            if in_scope
            else None,
        )
    return metrics


def _calibration(confidences: Sequence[float], right: Sequence[bool], bands: int = 10) -> dict[str, object]:
    """ECE over ``bands`` equal-width confidence bands, and each band's mean confidence against its accuracy."""
    table = []
    error = 0.0
    for band in range(bands):
        low, high = band / bands, (band + 1) / bands
        members = [i for i, c in enumerate(confidences) if low <= c < high or (band == bands - 1 and c == high)]
        if not members:
            continue
        confidence = sum(confidences[i] for i in members) / len(members)
        accuracy = sum(1 for i in members if right[i]) / len(members)
        error += len(members) / len(confidences) * abs(confidence - accuracy)
        table.append({"band": f"{low:.1f}-{high:.1f}", "questions": len(members),
                      "confidence": _round(confidence), "right": _round(accuracy)})
    return {"ece": _round(error) if confidences else None, "bands": table}


def _ratio(part: int, whole: int) -> float | None:
    return _round(part / whole) if whole else None


def _round(value: float) -> float:
    return round(float(value), 4)


def _auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Probability that an in-scope question gets more confidence than an out-of-scope one (ties count half)."""
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    values = np.concatenate([pos, neg])
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    # average ranks over ties
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    rank_sum = ranks[: len(pos)].sum()
    return float((rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def calibrate(
    queries: Sequence[EvalQuery],
    outcomes: Sequence[Outcome],
    base: DecisionThresholds,
    *,
    answer_precision: float = 0.85,
) -> DecisionThresholds:
    """Thresholds chosen on these (validation) questions.

    ``clarify``: the level that maximises hand-off F1 when the set has out-of-scope questions (otherwise kept).
    ``answer``: the lowest level at which the answers given are right at least ``answer_precision`` of the
    time; below it the bot offers a choice of articles instead.
    """
    grid = np.round(np.arange(0.50, 1.0, 0.005), 3)
    clarify = base.clarify
    if any(not q.in_scope for q in queries):
        best = -1.0
        for level in grid:
            f1 = _metrics(queries, outcomes, DecisionThresholds(answer=1.0, clarify=float(level)))["handoff_f1"]
            if isinstance(f1, float) and f1 > best:
                best, clarify = f1, float(level)
    answer = 1.0
    for level in grid:
        if level < clarify:
            continue
        accuracy = _metrics(queries, outcomes, DecisionThresholds(answer=float(level), clarify=clarify))[
            "answered_accuracy"
        ]
        if isinstance(accuracy, float) and accuracy >= answer_precision:
            answer = float(level)
            break
    return replace(base, answer=max(answer, clarify), clarify=clarify)


def split_folds(queries: Sequence[EvalQuery], folds: int, seed: int = 0) -> list[list[int]]:
    """Query positions split into ``folds`` parts at random (fixed seed), for cross-validation."""
    order = list(range(len(queries)))
    random.Random(seed).shuffle(order)
    return [sorted(order[k::folds]) for k in range(folds)]


@dataclass(frozen=True)
class EvalOptions:
    """How ``evaluate`` chooses thresholds and whether it measures learning."""

    thresholds: DecisionThresholds
    weights: ScoringWeights = ScoringWeights()
    calibrate_on: Path | None = None  # validation queries: thresholds are chosen there
    cv_folds: int = 0  # or: thresholds chosen by cross-validation over the queries themselves
    learn_folds: int = 0  # the other folds' questions become learned phrasings of their articles
    answer_precision: float = 0.85
    build: BuildOptions = BuildOptions()
    tuning: TuningOptions | None = None  # adapt the encoder to the knowledge base first (and to learned phrasings)


def evaluate(
    encoder: Encoder,
    kb_path: Path,
    queries_path: Path,
    options: EvalOptions,
    *,
    cache: EmbeddingCache | None,
    workdir: Path,
) -> dict[str, object]:
    """Build an index of ``kb_path`` in ``workdir``, search every query, and return the metrics."""
    articles = load_articles(kb_path)
    queries = load_queries(queries_path)
    base_encoder = encoder
    if options.tuning is not None:
        encoder = _tuned(base_encoder, articles, (), options.tuning, workdir / "tuned")
    base_store = IndexStore(workdir / "index")
    build_version(
        base_store, encoder, articles, cache=cache, options=options.build, source=str(kb_path),
        weights=options.weights, thresholds=options.thresholds,
    )
    index = KbIndex.load(base_store)
    known = set(index.article_ids)

    if options.learn_folds >= 2:
        outcomes: list[Outcome] = [Outcome((), ())] * len(queries)
        for k, fold in enumerate(split_folds(queries, options.learn_folds)):
            in_fold = set(fold)
            learned = [
                LearnedPhrasing(article_id=q.expected[0], text=q.query, lang=q.lang, source="evaluation")
                for i, q in enumerate(queries)
                if i not in in_fold and q.in_scope and q.expected[0] in known
            ]
            fold_encoder = encoder
            if options.tuning is not None:
                fold_encoder = _tuned(base_encoder, articles, learned, options.tuning, workdir / f"tuned-fold-{k}")
            store = IndexStore(workdir / f"learn-fold-{k}")
            build_version(
                store, fold_encoder, articles, learned, cache=cache, options=options.build,
                weights=options.weights, thresholds=options.thresholds,
            )
            fold_outcomes = run_queries(
                fold_encoder, KbIndex.load(store), options.weights, [queries[i] for i in fold], cache
            )
            for i, outcome in zip(fold, fold_outcomes):
                outcomes[i] = outcome
    else:
        outcomes = run_queries(encoder, index, options.weights, queries, cache)

    thresholds: Thresholds = options.thresholds
    chosen: object = _thresholds_dict(options.thresholds)
    if options.calibrate_on is not None:
        validation = load_queries(options.calibrate_on)
        val_outcomes = run_queries(encoder, index, options.weights, validation, cache)
        thresholds = calibrate(validation, val_outcomes, options.thresholds, answer_precision=options.answer_precision)
        chosen = {"chosen_on": str(options.calibrate_on), **_thresholds_dict(thresholds)}
    elif options.cv_folds >= 2:
        per_query = [options.thresholds] * len(queries)
        per_fold = []
        for fold in split_folds(queries, options.cv_folds, seed=1):
            in_fold = set(fold)
            rest = [i for i in range(len(queries)) if i not in in_fold]
            levels = calibrate(
                [queries[i] for i in rest],
                [outcomes[i] for i in rest],
                options.thresholds,
                answer_precision=options.answer_precision,
            )
            per_fold.append(_thresholds_dict(levels))
            for i in fold:
                per_query[i] = levels
        thresholds = per_query
        chosen = {"chosen_by": f"{options.cv_folds}-fold cross-validation", "folds": per_fold}

    result = compute_metrics(queries, outcomes, thresholds)
    result["thresholds"] = chosen
    result["unknown_expected_ids"] = sorted({e for q in queries for e in q.expected if e not in known})
    result["setup"] = {
        "kb": str(kb_path),
        "queries": str(queries_path),
        "articles": len(index),
        "model": encoder.model_id,
        "answer_weight": options.weights.answer_weight,
        "lexical_weight": options.weights.lexical_weight,
        "classifier_weight": options.weights.classifier_weight,
        "classifier": bool(index.manifest.data.get("classifier")),
        "learn_folds": options.learn_folds,
        "tuning": asdict(options.tuning) if options.tuning else None,
    }
    return result


def _tuned(
    encoder: Encoder,
    articles: Sequence[Article],
    learned: Sequence[LearnedPhrasing],
    options: TuningOptions,
    folder: Path,
) -> Encoder:
    tune_encoder(encoder, articles, folder, learned=learned, options=options)
    return Encoder.load(str(folder), folder.parent, batch_size=encoder.batch_size, engine="torch")


def _thresholds_dict(levels: DecisionThresholds) -> dict[str, float]:
    return {"answer": levels.answer, "clarify": levels.clarify, "ambiguity_margin": levels.ambiguity_margin}

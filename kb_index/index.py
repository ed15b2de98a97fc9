"""One loaded index version: the articles, their vectors, and how a question's vector scores each article.

Every article contributes several vectors (its title, its alternative phrasings, phrasings learned from
agents, and its answer, in every language it is written in). FAISS finds the nearest vectors; the articles
they belong to are then scored on all of their vectors, so each article gets one score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from kb_index.articles import Article, SourceLocation
from kb_index.classifier import ArticleClassifier
from kb_index.confidence import FALLBACK_MODEL, NEIGHBOURS, ConfidenceModel, Signals
from kb_index.errors import IndexUnavailableError, UnknownArticleError
from kb_index.lexical import LexicalIndex
from kb_index.store import IndexStore, Manifest
from kb_index.threads import available_threads

__all__ = ["EntryKind", "KbIndex", "Ranking", "ScoringWeights"]

# Questions are searched one at a time, and for one question FAISS's OpenMP threads only compete with the
# encoder's (they spin between questions): over 40 000 vectors a search took 18 ms with them and 3 ms without
# (p50 of a question at 10 000 articles: 32 ms -> 10 ms, `zabota bench search`). A large exact index is split
# into parts searched by threads of FAISS's own instead (``_threaded``; see ``kb_index.threads``).
faiss.omp_set_num_threads(1)
# From this many vectors a search is long enough for threads to pay (40 000 vectors on 2 cores: about 40 % less).
THREADED_SEARCH_FROM = 16_384


class EntryKind(IntEnum):
    TITLE = 0
    QUESTION = 1
    LEARNED = 2
    ANSWER = 3


@dataclass(frozen=True)
class ScoringWeights:
    """How an article's vectors combine into its score."""

    answer_weight: float = 0.3  # share of the answer's similarity; the rest is the best phrasing's
    lexical_weight: float = 0.02  # weight of the BM25 score, scaled to the best article's (0: dense only)
    candidates: int = 64  # nearest vectors fetched from FAISS before articles are scored
    lexical_candidates: int = 10  # best BM25 articles added to the candidates
    # Where the version has an article classifier: an article loses up to this much score as the classifier's
    # probability for it falls from 1 to 0, so a confident classifier leaves the similarity scale unchanged.
    classifier_weight: float = 0.25


@dataclass(frozen=True)
class Ranking:
    """Articles for one question, best first, and the probability that the first of them is the right one."""

    matches: list[tuple[str, float]]
    confidence: float
    signals: Signals | None = None


class KbIndex:
    """A searchable, immutable snapshot of one index version."""

    def __init__(
        self,
        manifest: Manifest,
        articles: list[Article],
        entry_article: np.ndarray,
        entry_kind: np.ndarray,
        vectors: np.ndarray,
        faiss_index: faiss.Index,
        lexical: LexicalIndex | None = None,
        classifier: ArticleClassifier | None = None,
        confidence: ConfidenceModel | None = None,
    ) -> None:
        self.manifest = manifest
        self.version = manifest.version
        self._versions: dict[str, dict[str, Article]] = {}
        for article in articles:
            self._versions.setdefault(article.id, {})[article.lang] = article
        self.article_ids: list[str] = list(self._versions)
        self._entry_article = entry_article
        self._entry_kind = entry_kind
        self._vectors = vectors
        self._faiss, self._faiss_parts = _threaded(faiss_index)
        self._lexical = lexical
        self._classifier = classifier
        # None: ``score`` reports the raw signals' score as the confidence (used while calibrating).
        self.confidence_model = confidence
        # Entries are stored grouped by article, so each article's vectors are one contiguous range.
        counts = np.bincount(entry_article, minlength=len(self.article_ids))
        self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self._ends = self._starts + counts

    @classmethod
    def load(cls, store: IndexStore, version: str | None = None) -> KbIndex:
        version = version or store.current_version()
        if version is None:
            raise IndexUnavailableError(f"No index has been built in {store.root} yet: run 'zabota kb reindex' first.")
        manifest = store.verify(version)
        folder = store.version_dir(version)
        articles = _read_articles(folder / "articles.jsonl")
        with np.load(folder / "entries.npz") as entries:
            entry_article = entries["article"].astype(np.int64)
            entry_kind = entries["kind"].astype(np.int8)
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        index = faiss.read_index(str(folder / "index.faiss"))
        if hasattr(index, "nprobe"):
            index.nprobe = int(manifest.data.get("index", {}).get("nprobe", 16))
        lexical = LexicalIndex.load(folder) if (folder / LexicalIndex.FILES[0]).is_file() else None
        calibration = manifest.data.get("calibration") or {}
        try:
            confidence = (
                ConfidenceModel.from_dict(calibration["model"]) if "model" in calibration else FALLBACK_MODEL
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexUnavailableError(
                f"Index version {version} has a damaged confidence model ({exc}): run 'zabota kb reindex'."
            ) from exc
        return cls(
            manifest,
            articles,
            entry_article,
            entry_kind,
            vectors,
            index,
            lexical,
            ArticleClassifier.load(folder),
            confidence,
        )

    def __len__(self) -> int:
        return len(self.article_ids)

    @property
    def languages(self) -> list[str]:
        return sorted({lang for versions in self._versions.values() for lang in versions})

    def versions_of(self, article_id: str) -> dict[str, Article]:
        try:
            return self._versions[article_id]
        except KeyError:
            raise UnknownArticleError(f"There is no article {article_id!r} in index version {self.version}.") from None

    def article(self, article_id: str, lang: str | None = None, fallback_langs: tuple[str, ...] = ()) -> Article:
        """The article in ``lang`` if it is written in it, else in the first of ``fallback_langs``, else any."""
        versions = self.versions_of(article_id)
        for candidate in (lang, *fallback_langs):
            if candidate and candidate in versions:
                return versions[candidate]
        return next(iter(versions.values()))

    def score(self, query: np.ndarray, weights: ScoringWeights, limit: int, text: str = "") -> Ranking:
        """The best ``limit`` articles for a question (its vector and its normalised text), best first.

        An article's score is its best similarity (phrasings and answer blended), plus the BM25 score scaled to
        the best article's, minus a penalty as the article classifier's probability for it falls. The
        confidence is the version's calibrated probability that the first article is right, from the best
        score, its lead over the second, its BM25 score, the classifier's probability and how close the
        question's nearest phrasings and answers are on average. The classifier's
        penalty in the best score uses the probability of the best three articles together: two
        near-identical articles that share the probability are a choice to offer, not a sign that the
        question is out of scope.
        """
        if not self.article_ids:
            return Ranking([], 0.0)
        k = min(weights.candidates, self._faiss.ntotal)
        similarities, found = self._faiss.search(query.reshape(1, -1).astype(np.float32), k)
        present = found[0] >= 0
        nearest = similarities[0][present][:NEIGHBOURS]
        groups = self._entry_article[found[0][present]]
        lexical = None
        lexical_best = 0.0
        if self._lexical is not None and weights.lexical_weight > 0 and text:
            lexical, lexical_best = self._lexical.scores(text)
            best = float(lexical.max())
            if best > 0:
                lexical /= best
                top = np.argpartition(-lexical, min(weights.lexical_candidates, lexical.size - 1))
                top = top[: weights.lexical_candidates]
                groups = np.concatenate([groups, top[lexical[top] > 0]])
            else:
                lexical = None
        probabilities = None
        if self._classifier is not None and weights.classifier_weight > 0:
            probabilities = self._classifier.probabilities(query)
            groups = np.concatenate([groups, np.argsort(-probabilities)[:5]])
        groups = np.unique(groups)
        if groups.size == 0:
            return Ranking([], 0.0)
        scores = self.score_articles(query, groups, weights)
        dense = scores
        if lexical is not None:
            scores = scores + weights.lexical_weight * lexical[groups]
        offset = 0.0
        classifier_share = 0.0
        if probabilities is not None:
            p = probabilities[groups]
            scores = scores - weights.classifier_weight * (1.0 - p)
        order = np.argsort(-scores)
        if probabilities is not None:
            classifier_share = min(1.0, float(p[order[:3]].sum()))
            offset = weights.classifier_weight * (classifier_share - float(p[order[0]]))
        first = order[0]
        first_lexical = float(lexical[groups[first]]) if lexical is not None else 0.0
        signals = Signals.of(
            float(scores[first]) + offset,
            float(scores[order[1]]) if order.size > 1 else None,
            first_lexical,
            classifier_share,
            lexical_best=lexical_best,
            dense_rank=1 + int(np.sum(dense > dense[first])),
            lexical_rank=1 + int(np.sum(lexical > first_lexical)) if lexical is not None and first_lexical > 0 else 0,
            neighbours=float(nearest.mean()) if nearest.size else 0.0,
        )
        model = self.confidence_model
        confidence = model.probability(signals) if model is not None else signals.score
        matches = [(self.article_ids[groups[i]], float(scores[i])) for i in order[:limit]]
        return Ranking(matches, confidence, signals)

    def score_articles(self, query: np.ndarray, groups: np.ndarray, weights: ScoringWeights) -> np.ndarray:
        """Scores of the articles numbered ``groups``, from every vector each of them has."""
        starts = self._starts[groups]
        lengths = self._ends[groups] - starts
        first = np.cumsum(lengths) - lengths  # where each article's rows begin among the rows read
        rows = np.arange(int(lengths.sum())) + np.repeat(starts - first, lengths)
        sims = np.asarray(self._vectors[rows], dtype=np.float32) @ query.astype(np.float32)
        is_answer = self._entry_kind[rows] == EntryKind.ANSWER
        phrasing = np.full(groups.size, -np.inf, dtype=np.float32)
        answer = np.full(groups.size, -np.inf, dtype=np.float32)
        present = lengths > 0  # an article can have no vectors left in a view made for calibrating
        if rows.size:
            phrasing[present] = np.maximum.reduceat(np.where(is_answer, -np.inf, sims), first[present])
            answer[present] = np.maximum.reduceat(np.where(is_answer, sims, -np.inf), first[present])
        w = weights.answer_weight
        both = np.isfinite(phrasing) & np.isfinite(answer)
        return np.where(both, (1 - w) * phrasing + w * answer, np.where(np.isfinite(phrasing), phrasing, answer))


def _threaded(index: faiss.Index) -> tuple[faiss.Index, list[faiss.Index]]:
    """A large exact half-precision index as one part per core, searched in parallel with the same results (ids
    numbered on across the parts), and the parts, kept alive with the index that searches them."""
    count = min(available_threads(), 4)
    if (
        count < 2
        or index.ntotal < THREADED_SEARCH_FROM
        or not isinstance(index, faiss.IndexScalarQuantizer)
        or index.sq.qtype != faiss.ScalarQuantizer.QT_fp16
    ):
        return index, []
    codes = faiss.vector_to_array(index.codes).reshape(index.ntotal, index.code_size)
    shards: Any = faiss.IndexShards(index.d, True)  # threaded
    shards.successive_ids = True  # a part's ids go on from the part before
    parts: list[Any] = []
    for chunk in np.array_split(codes, count):
        part = faiss.IndexScalarQuantizer(index.d, faiss.ScalarQuantizer.QT_fp16, index.metric_type)
        part.add_sa_codes(np.ascontiguousarray(chunk))
        shards.add_shard(part)
        parts.append(part)
    return shards, parts


def _read_articles(path: Path) -> list[Article]:
    articles = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            data = json.loads(line)
            source = data.pop("source", None)
            data["questions"] = tuple(data.get("questions", ()))
            data["tags"] = tuple(data.get("tags", ()))
            articles.append(Article(**data, source=SourceLocation(*source) if source else None))
    return articles

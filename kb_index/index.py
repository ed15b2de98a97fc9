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

import faiss
import numpy as np

from kb_index.articles import Article, SourceLocation
from kb_index.errors import IndexUnavailableError, UnknownArticleError
from kb_index.store import IndexStore, Manifest

__all__ = ["EntryKind", "KbIndex", "ScoringWeights"]


class EntryKind(IntEnum):
    TITLE = 0
    QUESTION = 1
    LEARNED = 2
    ANSWER = 3


@dataclass(frozen=True)
class ScoringWeights:
    """How an article's vectors combine into its score."""

    answer_weight: float = 0.3  # share of the answer's similarity; the rest is the best phrasing's
    candidates: int = 64  # nearest vectors fetched from FAISS before articles are scored


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
        self._faiss = faiss_index
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
        return cls(manifest, articles, entry_article, entry_kind, vectors, index)

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

    def score(self, query: np.ndarray, weights: ScoringWeights, limit: int) -> list[tuple[str, float]]:
        """The best ``limit`` articles for one query vector, each with its score, best first."""
        if not self.article_ids:
            return []
        k = min(weights.candidates, self._faiss.ntotal)
        _, found = self._faiss.search(query.reshape(1, -1).astype(np.float32), k)
        groups = np.unique(self._entry_article[found[0][found[0] >= 0]])
        if groups.size == 0:
            return []
        scores = self.score_articles(query, groups, weights)
        order = np.argsort(-scores)[:limit]
        return [(self.article_ids[groups[i]], float(scores[i])) for i in order]

    def score_articles(self, query: np.ndarray, groups: np.ndarray, weights: ScoringWeights) -> np.ndarray:
        """Scores of the articles numbered ``groups``, from every vector each of them has."""
        starts, ends = self._starts[groups], self._ends[groups]
        lengths = ends - starts
        rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
        sims = np.asarray(self._vectors[rows], dtype=np.float32) @ query.astype(np.float32)
        is_answer = self._entry_kind[rows] == EntryKind.ANSWER
        owner = np.repeat(np.arange(groups.size), lengths)
        phrasing = np.full(groups.size, -np.inf, dtype=np.float32)
        answer = np.full(groups.size, -np.inf, dtype=np.float32)
        np.maximum.at(phrasing, owner[~is_answer], sims[~is_answer])
        np.maximum.at(answer, owner[is_answer], sims[is_answer])
        w = weights.answer_weight
        both = np.isfinite(phrasing) & np.isfinite(answer)
        return np.where(both, (1 - w) * phrasing + w * answer, np.where(np.isfinite(phrasing), phrasing, answer))


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

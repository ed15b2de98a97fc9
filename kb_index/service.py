"""The knowledge base as the bot, the CLI and the Rasa actions use it: search, reindex, learn.

``KnowledgeBase`` owns the encoder and the folder of index versions. It serves the current version and
notices when another process (or a reindex in this one) has switched to a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kb_index.articles import Article
from kb_index.builder import BuildOptions, BuildProgress, ReindexSummary, build_version
from kb_index.decision import ArticleMatch, Decision, DecisionThresholds, SearchResult, decide
from kb_index.embedding_cache import EmbeddingCache
from kb_index.encoder import Encoder
from kb_index.errors import IndexUnavailableError
from kb_index.index import KbIndex, ScoringWeights
from kb_index.learned import LearnedPhrasing, LearnedPhrasings
from kb_index.sources import load_articles
from kb_index.store import IndexStore
from kb_index.text import normalize_text

__all__ = ["KnowledgeBase"]

log = logging.getLogger(__name__)


class KnowledgeBase:
    """Search over the current index version, and the operations that make new versions."""

    def __init__(
        self,
        store: IndexStore,
        encoder: Encoder,
        thresholds: DecisionThresholds,
        *,
        weights: ScoringWeights | None = None,
        build_options: BuildOptions | None = None,
        default_lang: str = "",
        refresh_interval: float = 1.0,
        cache: EmbeddingCache | None = None,
    ) -> None:
        self.store = store
        self.encoder = encoder
        self.thresholds = thresholds
        self.weights = weights or ScoringWeights()
        self.build_options = build_options or BuildOptions()
        self.default_lang = default_lang
        self.learned = LearnedPhrasings(store.learned_path)
        self.cache = cache
        self._refresh_interval = refresh_interval
        self._index: KbIndex | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    # ------------------------------------------------------------ serving

    @property
    def index(self) -> KbIndex:
        """The index version being served, switching to a newer one if it has appeared since the last look."""
        now = time.monotonic()
        if self._index is None or now - self._checked_at >= self._refresh_interval:
            self._checked_at = now
            self.refresh()
        if self._index is None:
            raise IndexUnavailableError(f"No index has been built in {self.store.root} yet: run 'zabota kb reindex'.")
        return self._index

    def refresh(self) -> bool:
        """Load the current version if it is not the one being served; True when the served version changed."""
        version = self.store.current_version()
        if version is None or (self._index is not None and self._index.version == version):
            return False
        with self._lock:
            if self._index is not None and self._index.version == version:
                return False
            try:
                loaded = KbIndex.load(self.store, version)
            except IndexUnavailableError:
                if self._index is None:
                    raise
                log.exception("index version %s cannot be loaded; still serving %s", version, self._index.version)
                return False
            if loaded.manifest.model_id != self.encoder.model_id:
                message = (
                    f"Index version {version} was built with model {loaded.manifest.model_id}, "
                    f"but the encoder is {self.encoder.model_id}: run 'zabota kb reindex'."
                )
                if self._index is None:
                    raise IndexUnavailableError(message)
                log.error(message)
                return False
            self._index = loaded
            log.info("serving knowledge-base index version %s (%d articles)", version, len(loaded))
            return True

    async def watch(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Switch to each new index version (a reindex by any process) soon after it appears, loading it in a
        worker thread so that questions keep being answered from the old version meanwhile."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:
                log.exception("checking for a new knowledge-base index version failed")
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass

    def search(self, question: str, *, lang: str | None = None, limit: int = 3) -> SearchResult:
        """Search one question; encoding happens in the calling thread."""
        normalized = normalize_text(question)
        index = self.index
        if not normalized:
            return SearchResult(question, normalized, Decision.HANDOFF, 0.0, (), index.version)
        vector = self.encoder.encode_queries([normalized])[0]
        return self.result_for_vector(question, normalized, vector, lang=lang, limit=limit, index=index)

    async def search_async(self, question: str, *, lang: str | None = None, limit: int = 3) -> SearchResult:
        """Search one question from async code; concurrent questions are encoded together in small batches."""
        normalized = normalize_text(question)
        index = self.index
        if not normalized:
            return SearchResult(question, normalized, Decision.HANDOFF, 0.0, (), index.version)
        vector = await self.encoder.encode_query(normalized)
        return await asyncio.to_thread(
            self.result_for_vector, question, normalized, vector, lang=lang, limit=limit, index=index
        )

    def result_for_vector(
        self,
        question: str,
        normalized: str,
        vector: np.ndarray,
        *,
        lang: str | None = None,
        limit: int = 3,
        index: KbIndex | None = None,
    ) -> SearchResult:
        index = index or self.index
        ranking = index.score(vector, self.weights, max(limit, 2), normalized)
        scored = ranking.matches
        decision, confidence = decide([score for _, score in scored], self.thresholds, ranking.confidence)
        fallback = (self.default_lang,) if self.default_lang else ()
        matches = []
        for article_id, score in scored[:limit]:
            shown = index.article(article_id, lang, fallback)
            matches.append(ArticleMatch(article_id, shown.title, score, shown.lang))
        return SearchResult(question, normalized, decision, confidence, tuple(matches), index.version)

    def article(self, article_id: str, lang: str | None = None) -> Article:
        """The article to show a customer writing in ``lang``."""
        fallback = (self.default_lang,) if self.default_lang else ()
        return self.index.article(article_id, lang, fallback)

    async def close(self) -> None:
        await self.encoder.aclose()

    # ------------------------------------------------------------ new versions

    def reindex(self, source: Path, progress: BuildProgress | None = None) -> ReindexSummary:
        """Build a version from ``source`` and switch to it; a broken source raises and changes nothing."""
        articles = load_articles(source)
        return self._build(articles, str(source), progress)

    def rebuild_with_learned(self, progress: BuildProgress | None = None) -> ReindexSummary:
        """A new version with the served articles and every learned phrasing (no source files are read)."""
        index = self.index
        articles = [a for article_id in index.article_ids for a in index.versions_of(article_id).values()]
        return self._build(articles, str(index.manifest.data.get("source", "")), progress)

    def build_from_articles(
        self, articles: Sequence[Article], source: str = "", progress: BuildProgress | None = None
    ) -> ReindexSummary:
        return self._build(list(articles), source, progress)

    def _build(self, articles: list[Article], source: str, progress: BuildProgress | None) -> ReindexSummary:
        with self.store.reindex_lock():
            summary = build_version(
                self.store,
                self.encoder,
                articles,
                self.learned.all(),
                cache=self.cache,
                options=self.build_options,
                source=source,
                progress=progress,
                weights=self.weights,
                thresholds=self.thresholds,
            )
        self.refresh()
        return summary

    def learn(self, article_id: str, text: str, *, lang: str = "", source: str = "") -> bool:
        """Remember that ``text`` asks for ``article_id``; used by every version built from now on."""
        self.index.versions_of(article_id)  # refuses an unknown article
        return self.learned.add(LearnedPhrasing(article_id=article_id, text=text, lang=lang, source=source))

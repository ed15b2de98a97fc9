"""Knowledge-base search: load articles, embed them, index them in versions, and decide answer / clarify / hand-off.

A plain library: no Telegram, no Redis. The bot, the CLI and the Rasa actions use ``KnowledgeBase``.
"""

from kb_index.articles import Article, SourceLocation
from kb_index.builder import BuildOptions, ReindexSummary
from kb_index.decision import ArticleMatch, Decision, DecisionThresholds, SearchResult
from kb_index.embedding_cache import EmbeddingCache
from kb_index.encoder import DEFAULT_MODEL, Encoder
from kb_index.errors import (
    IndexUnavailableError,
    KbError,
    KbSourceError,
    ModelPreparationError,
    SourceProblem,
    UnknownArticleError,
)
from kb_index.index import KbIndex, ScoringWeights
from kb_index.learned import LearnedPhrasing, LearnedPhrasings
from kb_index.service import KnowledgeBase
from kb_index.sources import load_articles
from kb_index.store import IndexStore
from kb_index.text import normalize_text

__all__ = [
    "DEFAULT_MODEL",
    "Article",
    "ArticleMatch",
    "BuildOptions",
    "Decision",
    "DecisionThresholds",
    "EmbeddingCache",
    "Encoder",
    "IndexStore",
    "IndexUnavailableError",
    "KbError",
    "KbIndex",
    "KbSourceError",
    "KnowledgeBase",
    "LearnedPhrasing",
    "LearnedPhrasings",
    "ModelPreparationError",
    "ReindexSummary",
    "ScoringWeights",
    "SearchResult",
    "SourceLocation",
    "SourceProblem",
    "UnknownArticleError",
    "load_articles",
    "normalize_text",
]

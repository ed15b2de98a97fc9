"""Vectors already computed, kept by (model, role, text), so a reindex encodes only what changed.

A SQLite file under the index folder: it survives restarts, needs no server, and is safe to read while
another process writes (WAL mode).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kb_index.encoder import Encoder, ProgressCallback

__all__ = ["EmbeddingCache", "encode_cached"]


class EmbeddingCache:
    """A persistent map from (model id, role, text) to a float32 vector."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
        self._db.commit()

    @staticmethod
    def key(model_id: str, role: str, text: str) -> bytes:
        return hashlib.sha256(f"{model_id}\x1f{role}\x1f{text}".encode()).digest()[:20]

    def get_many(self, keys: Sequence[bytes], dimension: int) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(keys), 900):  # SQLite's limit on bound parameters
            chunk = keys[start : start + 900]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk):
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.size == dimension:
                    found[bytes(key)] = vector
        return found

    def put_many(self, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)",
            [(key, np.ascontiguousarray(vec, dtype=np.float32).tobytes()) for key, vec in items],
        )
        self._db.commit()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def encode_cached(
    encoder: Encoder,
    cache: EmbeddingCache | None,
    texts: Sequence[str],
    role: str = "document",
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` in ``role`` ("document" or "query"), one row each, and how many were encoded anew."""
    encode = encoder.encode_documents if role == "document" else encoder.encode_queries
    out = np.zeros((len(texts), encoder.dimension), dtype=np.float32)
    keys = [EmbeddingCache.key(encoder.model_id, role, t) for t in texts]
    found = cache.get_many(list(dict.fromkeys(keys)), encoder.dimension) if cache is not None else {}
    missing: dict[bytes, str] = {}
    for i, key in enumerate(keys):
        vector = found.get(key)
        if vector is None:
            missing.setdefault(key, texts[i])
        else:
            out[i] = vector
    if not missing:
        return out, 0
    fresh_texts = list(missing.values())
    vectors = encoder.encode_documents(fresh_texts, progress) if role == "document" else encode(fresh_texts)
    if cache is not None:
        cache.put_many(list(zip(missing.keys(), vectors)))
    fresh = dict(zip(missing.keys(), vectors))
    for i, key in enumerate(keys):
        if key in fresh:
            out[i] = fresh[key]
    return out, len(missing)

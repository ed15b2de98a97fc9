"""The lexical signal: BM25 over articles, with Snowball stemming, next to the dense vectors.

Dense vectors know that "посылка" and "заказ" are related; BM25 knows that the question says "трансляция"
and only two articles do. Its score, scaled to the best article's, is added with a small weight to the dense
score, which mostly breaks near-ties between neighbouring articles.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import sparse

__all__ = ["LexicalIndex", "tokenize"]

_WORD = re.compile(r"[^\W\d_]+|\d+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")


@lru_cache(maxsize=4)
def _stemmer(language: str):  # -> Stemmer.Stemmer
    import Stemmer

    return Stemmer.Stemmer(language)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed words of at least two letters (Russian stemmer for Cyrillic, English for Latin)."""
    words = [w for w in _WORD.findall(text.lower()) if len(w) > 1]
    cyrillic = [w for w in words if _CYRILLIC.search(w)]
    latin = [w for w in words if not _CYRILLIC.search(w)]
    stems = _stemmer("russian").stemWords(cyrillic) if cyrillic else []
    stems += _stemmer("english").stemWords(latin) if latin else []
    return stems


class LexicalIndex:
    """BM25 weights of every article (rows) for every stemmed word (columns)."""

    FILES = ("lexical.npz", "lexical-vocabulary.json")

    def __init__(self, vocabulary: dict[str, int], weights: sparse.csc_matrix) -> None:
        self._vocabulary = vocabulary
        self._weights = weights

    @classmethod
    def build(cls, documents: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> LexicalIndex:
        vocabulary: dict[str, int] = {}
        rows, cols, counts = [], [], []
        lengths = np.zeros(len(documents), dtype=np.float32)
        for row, document in enumerate(documents):
            tokens = tokenize(document)
            lengths[row] = len(tokens)
            for token, count in Counter(tokens).items():
                rows.append(row)
                cols.append(vocabulary.setdefault(token, len(vocabulary)))
                counts.append(count)
        tf = np.asarray(counts, dtype=np.float32)
        row_index = np.asarray(rows, dtype=np.int64)
        col_index = np.asarray(cols, dtype=np.int64)
        n_docs = max(len(documents), 1)
        df = np.bincount(col_index, minlength=len(vocabulary)).astype(np.float32)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        average = float(lengths.mean()) if len(documents) else 1.0
        norm = k1 * (1 - b + b * lengths[row_index] / max(average, 1e-6))
        values = idf[col_index] * tf * (k1 + 1) / (tf + norm)
        weights = sparse.csc_matrix(
            (values.astype(np.float32), (row_index, col_index)), shape=(len(documents), len(vocabulary))
        )
        return cls(vocabulary, weights)

    def scores(self, text: str) -> np.ndarray:
        """BM25 score of every article for ``text`` (zeros when no word of it is known)."""
        columns = [self._vocabulary[t] for t in tokenize(text) if t in self._vocabulary]
        if not columns:
            return np.zeros(self._weights.shape[0], dtype=np.float32)
        return np.asarray(self._weights[:, columns].sum(axis=1), dtype=np.float32).ravel()

    def save(self, folder: Path) -> None:
        sparse.save_npz(folder / "lexical.npz", self._weights.tocsc(), compressed=False)
        words = sorted(self._vocabulary, key=self._vocabulary.__getitem__)
        (folder / "lexical-vocabulary.json").write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        weights = sparse.load_npz(folder / "lexical.npz").tocsc()
        words = json.loads((folder / "lexical-vocabulary.json").read_text(encoding="utf-8"))
        return cls({word: i for i, word in enumerate(words)}, weights)

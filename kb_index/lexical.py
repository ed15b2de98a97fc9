"""The lexical signal: BM25 over articles, with Snowball stemming, next to the dense vectors.

Dense vectors know that "посылка" and "заказ" are related; BM25 knows that the question says "трансляция"
and only two articles do. Its score, scaled to the best article's, is added with a small weight to the dense
score, which mostly breaks near-ties between neighbouring articles.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

__all__ = ["LexicalIndex", "tokenize"]

_WORD = re.compile(r"[^\W\d_]+|\d+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
# Words that say nothing about a topic. They still rank articles (an "если" in common is a hint between two
# neighbours), but they do not tell whether a question is about the knowledge base at all: on a small one a word
# like "за" may occur in one article only, and "как вылечить простуду за один день" would look like a question
# about that article.
STOP_WORDS = frozenset(
    ["а", "без", "бы", "был", "была", "были", "было", "быть", "в", "вам", "вас", "ваш", "ваша", "ваше", "вы", "где", "да", "для", "до", "его", "ее", "её", "если", "есть", "ещё", "еще", "же", "за", "и", "из", "или", "им", "их", "к", "как", "какая", "какие", "каким", "какой", "ко", "когда", "кто", "ли", "либо", "мне", "меня", "мой", "мол", "мы", "на", "над", "не", "нет", "ни", "но", "ну", "о", "об", "один", "одна", "одно", "от", "по", "под", "при", "про", "с", "со", "так", "там", "те", "то", "того", "тоже", "той", "только", "том", "ту", "тут", "у", "уже", "хочу", "чем", "через", "что", "чтобы", "чтоб", "эта", "эти", "это", "этот", "я", "але", "але", "би", "бо", "був", "була", "були", "було", "в", "вам", "вас", "ваш", "ваша", "ви", "від", "де", "для", "до", "з", "за", "і", "із", "й", "їх", "як", "який", "яка", "яке", "які", "коли", "хто", "чи", "мені", "мене", "мій", "ми", "на", "над", "не", "ні", "но", "по", "під", "при", "про", "та", "так", "там", "те", "то", "тут", "у", "уже", "хочу", "це", "ця", "цей", "що", "щоб", "я", "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "have", "how", "i", "if", "in", "is", "it", "me", "my", "no", "not", "of", "on", "or", "so", "that", "the", "this", "to", "was", "what", "when", "where", "which", "who", "why", "will", "with", "you", "your"]
)


@lru_cache(maxsize=4)
def _stemmer(language: str) -> Any:  # Stemmer.Stemmer
    import Stemmer

    return Stemmer.Stemmer(language)


_STEMS: dict[str, str] = {}  # word -> stem: a knowledge base has tens of thousands of words, said millions of times
_STEMS_KEPT = 500_000


def tokenize(text: str, *, topical: bool = False) -> list[str]:
    """Lower-cased, stemmed words of at least two letters, in the order said (Russian stemmer for Cyrillic,
    English for Latin); ``topical``: without ``STOP_WORDS``."""
    return _stemmed([w for w in _words(text) if not (topical and w in STOP_WORDS)])


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if len(w) > 1]


def _stemmed(words: list[str]) -> list[str]:
    unknown = [w for w in dict.fromkeys(words) if w not in _STEMS]
    if unknown:
        if len(_STEMS) + len(unknown) > _STEMS_KEPT:
            _STEMS.clear()
        cyrillic = [w for w in unknown if _CYRILLIC.search(w)]
        latin = [w for w in unknown if not _CYRILLIC.search(w)]
        if cyrillic:
            _STEMS.update(zip(cyrillic, _stemmer("russian").stemWords(cyrillic)))
        if latin:
            _STEMS.update(zip(latin, _stemmer("english").stemWords(latin)))
    return [_STEMS[w] for w in words]


# a document's digest -> its terms, their counts, its length
_TERMS: dict[bytes, tuple[tuple[str, ...], np.ndarray, int]] = {}
_TERMS_KEPT = 50_000


def _document_terms(document: str) -> tuple[tuple[str, ...], np.ndarray, int]:
    """The distinct stemmed words of an article's text, how often each occurs and how many words it has;
    remembered (under the text's digest, not the text), so that a reindex that changes a few articles does not
    tokenise the rest again."""
    digest = hashlib.blake2b(document.encode(), digest_size=16).digest()
    known = _TERMS.get(digest)
    if known is None:
        tokens = tokenize(document)
        counted = Counter(tokens)
        known = (tuple(counted), np.fromiter(counted.values(), dtype=np.float32, count=len(counted)), len(tokens))
        if len(_TERMS) >= _TERMS_KEPT:
            _TERMS.clear()
        _TERMS[digest] = known
    return known


class LexicalIndex:
    """BM25 weights of every article (rows) for every stemmed word (columns)."""

    FILES = ("lexical.npz", "lexical-vocabulary.json")

    def __init__(self, vocabulary: dict[str, int], weights: sparse.csc_matrix) -> None:
        self._vocabulary = vocabulary
        self._weights = weights

    @classmethod
    def build(cls, documents: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> LexicalIndex:
        terms_of: list[tuple[str, ...]] = []
        counts: list[np.ndarray] = []
        sizes = np.zeros(len(documents), dtype=np.int64)
        lengths = np.zeros(len(documents), dtype=np.float32)
        for row, document in enumerate(documents):
            terms, term_counts, length = _document_terms(document)
            terms_of.append(terms)
            counts.append(term_counts)
            sizes[row] = len(terms)
            lengths[row] = length
        # Words numbered in the order first seen, looked up without a Python loop over every (article, word).
        vocabulary = {term: i for i, term in enumerate(dict.fromkeys(chain.from_iterable(terms_of)))}
        tf = np.concatenate(counts) if counts else np.zeros(0, dtype=np.float32)
        row_index = np.repeat(np.arange(len(documents), dtype=np.int64), sizes)
        col_index = np.fromiter(
            map(vocabulary.__getitem__, chain.from_iterable(terms_of)), dtype=np.int64, count=int(sizes.sum())
        )
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

    def scores(self, text: str) -> tuple[np.ndarray, float]:
        """BM25 score of every article for ``text`` (zeros when no word of it is known), and the best score of
        any article from its words but ``STOP_WORDS`` (how much its topical words say at all).

        Each word's column is read once from the sparse matrix and added up directly: slicing the matrix
        cost more than the sums on a large knowledge base.
        """
        words = _words(text)
        columns: list[int] = []
        topical: list[bool] = []
        for word, term in zip(words, _stemmed(words)):
            column = self._vocabulary.get(term)
            if column is not None:
                columns.append(column)
                topical.append(word not in STOP_WORDS)
        count = self._weights.shape[0]
        if not columns:
            return np.zeros(count, dtype=np.float32), 0.0
        indptr, indices, data = self._weights.indptr, self._weights.indices, self._weights.data
        spans = [(int(indptr[c]), int(indptr[c + 1])) for c in columns]
        rows = np.concatenate([indices[a:b] for a, b in spans])
        values = np.concatenate([data[a:b] for a, b in spans])
        total = np.bincount(rows, weights=values, minlength=count).astype(np.float32)
        if not any(topical):
            return total, 0.0
        if all(topical):
            return total, float(total.max())
        kept = np.repeat(np.asarray(topical), [b - a for a, b in spans])
        best = float(np.bincount(rows[kept], weights=values[kept], minlength=count).max())
        return total, best

    def save(self, folder: Path) -> None:
        sparse.save_npz(folder / "lexical.npz", self._weights.tocsc(), compressed=False)
        words = sorted(self._vocabulary, key=self._vocabulary.__getitem__)
        (folder / "lexical-vocabulary.json").write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        weights = sparse.load_npz(folder / "lexical.npz").tocsc()
        words = json.loads((folder / "lexical-vocabulary.json").read_text(encoding="utf-8"))
        return cls({word: i for i, word in enumerate(words)}, weights)

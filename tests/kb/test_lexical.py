"""The BM25 side of the search: which articles share a question's words, and how much its topical words say."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from kb_index.lexical import LexicalIndex, tokenize

ARTICLES = [
    "Как отменить заказ? Отменить заказ можно в личном кабинете до передачи в доставку.",
    "Сколько стоит доставка? Доставка курьером стоит 300 рублей, самовывоз бесплатно.",
    "Как вернуть товар? Вернуть товар можно в течение 14 дней.",
]


def _bm25_by_hand(question: str, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    documents = [Counter(tokenize(text)) for text in ARTICLES]
    lengths = [sum(d.values()) for d in documents]
    average = sum(lengths) / len(lengths)
    scores = np.zeros(len(ARTICLES))
    for term in tokenize(question):
        df = sum(1 for d in documents if term in d)
        if df == 0:
            continue
        idf = math.log1p((len(documents) - df + 0.5) / (df + 0.5))
        for row, (document, length) in enumerate(zip(documents, lengths)):
            tf = document[term]
            scores[row] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average))
    return scores


@pytest.mark.parametrize(
    "question", ["как отменить заказ", "доставка доставка курьером", "вернуть товар и отменить заказ", "погода"]
)
def test_scores_are_bm25_over_the_questions_words(question: str) -> None:
    scores, _ = LexicalIndex.build(ARTICLES).scores(question)
    assert scores == pytest.approx(_bm25_by_hand(question), rel=1e-5, abs=1e-6)


def test_the_article_sharing_the_words_comes_first() -> None:
    scores, _ = LexicalIndex.build(ARTICLES).scores("сколько стоит доставка курьером")
    assert int(np.argmax(scores)) == 1


def test_words_like_how_and_where_count_in_the_score_but_say_nothing_of_the_topic() -> None:
    index = LexicalIndex.build(ARTICLES)
    scores, topical_best = index.scores("как и где")
    assert scores.max() > 0  # "как" is in two articles
    assert topical_best == 0.0
    scores, topical_best = index.scores("как отменить заказ")
    assert 0 < topical_best < scores.max()  # the same words but "как"


def test_a_question_with_no_known_word_scores_nothing() -> None:
    scores, topical_best = LexicalIndex.build(ARTICLES).scores("абракадабра 😀")
    assert not scores.any() and topical_best == 0.0

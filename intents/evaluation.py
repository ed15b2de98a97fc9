"""Measure the intent classifier on a held-out part of its training data (``zabota intents eval``).

The examples are split stratified by (intent, language) with a fixed seed, a classifier is trained on the rest,
and the held-out examples are classified: accuracy overall, per language and per intent, the most frequent
mistakes, and how the accuracy moves with the confidence threshold (to choose it).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from intents.classifier import DEFAULT_THRESHOLD, IntentClassifier, encode_examples
from intents.nlu import QUESTION, TrainingExample
from kb_index.embedding_cache import EmbeddingCache
from kb_index.encoder import Encoder

__all__ = ["THRESHOLD_GRID", "evaluate_intents", "split_holdout"]

THRESHOLD_GRID = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def split_holdout(
    examples: Sequence[TrainingExample], *, holdout: float = 0.2, seed: int = 0
) -> tuple[list[TrainingExample], list[TrainingExample]]:
    """(train, held out): ``holdout`` of every (intent, language) group held out, at least one where it has two."""
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be between 0 and 1, got {holdout}")
    groups: dict[tuple[str, str], list[TrainingExample]] = defaultdict(list)
    for example in examples:
        groups[(example.intent, example.lang)].append(example)
    rng = random.Random(seed)
    train: list[TrainingExample] = []
    held: list[TrainingExample] = []
    for key in sorted(groups):
        group = list(groups[key])
        rng.shuffle(group)
        count = max(1, round(len(group) * holdout)) if len(group) >= 2 else 0
        held.extend(group[:count])
        train.extend(group[count:])
    return train, held


def evaluate_intents(
    encoder: Encoder,
    examples: Sequence[TrainingExample],
    *,
    holdout: float = 0.2,
    seed: int = 0,
    cache: EmbeddingCache | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    confusions: int = 10,
) -> dict[str, Any]:
    """Train on part of ``examples`` and measure on the rest.

    Returns ``{"examples", "train", "held_out", "threshold", "accuracy", "per_language": {lang: {"accuracy",
    "count"}}, "per_intent": {intent: {"accuracy", "precision", "count"}}, "questions_kept": share of held-out
    questions still sent to the knowledge base, "confusions": [{"expected", "predicted", "count", "examples"}],
    "by_threshold": [{"threshold", "accuracy", "questions_kept"}]}``; accuracy per intent is its recall.
    """
    train, held = split_holdout(examples, holdout=holdout, seed=seed)
    if not held:
        raise ValueError("nothing to hold out: every (intent, language) group has fewer than two examples")
    classifier = IntentClassifier.train(encoder, train, cache=cache, threshold=threshold)
    vectors = encode_examples(encoder, [example.text for example in held], cache)
    predictions = [classifier.classify_vector(vector) for vector in vectors]
    predicted = [prediction.intent for prediction in predictions]
    expected = [example.intent for example in held]

    per_language: dict[str, dict[str, float | int]] = {}
    for lang in sorted({example.lang for example in held}):
        rows = [i for i, example in enumerate(held) if example.lang == lang]
        per_language[lang] = {"accuracy": _share(predicted[i] == expected[i] for i in rows), "count": len(rows)}

    per_intent: dict[str, dict[str, float | int]] = {}
    for intent in sorted(set(expected)):
        rows = [i for i, name in enumerate(expected) if name == intent]
        chosen = [i for i, name in enumerate(predicted) if name == intent]
        per_intent[intent] = {
            "accuracy": _share(predicted[i] == intent for i in rows),
            "precision": _share(expected[i] == intent for i in chosen) if chosen else 0.0,
            "count": len(rows),
        }

    mistakes: Counter[tuple[str, str]] = Counter()
    samples: dict[tuple[str, str], list[str]] = defaultdict(list)
    for example, guess in zip(held, predicted):
        if guess != example.intent:
            pair = (example.intent, guess)
            mistakes[pair] += 1
            if len(samples[pair]) < 3:
                samples[pair].append(example.text)

    best = np.array([prediction.ranking[0][0] for prediction in predictions])
    confidence = np.array([prediction.confidence for prediction in predictions])
    truth = np.array(expected)
    is_question = truth == QUESTION
    by_threshold = []
    for level in sorted({*THRESHOLD_GRID, threshold}):
        chosen_intents = np.where(confidence >= level, best, QUESTION)
        by_threshold.append(
            {
                "threshold": level,
                "accuracy": float((chosen_intents == truth).mean()),
                "questions_kept": float((chosen_intents[is_question] == QUESTION).mean()) if is_question.any() else 1.0,
            }
        )

    return {
        "examples": len(examples),
        "train": len(train),
        "held_out": len(held),
        "threshold": threshold,
        "accuracy": _share(p == e for p, e in zip(predicted, expected)),
        "per_language": per_language,
        "per_intent": per_intent,
        "questions_kept": per_intent.get(QUESTION, {}).get("accuracy", 1.0),
        "confusions": [
            {"expected": pair[0], "predicted": pair[1], "count": count, "examples": samples[pair]}
            for pair, count in mistakes.most_common(confusions)
        ],
        "by_threshold": by_threshold,
    }


def _share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return sum(bool(flag) for flag in values) / len(values) if values else 0.0

"""Tell small talk from a service request: an intent classifier on the knowledge base's own encoder.

A softmax regression (``kb_index.classifier.ArticleClassifier``) over the e5 query vectors of the training
examples. The bot encodes a message once and can reuse the vector; when the classifier is unsure it answers
``question``, because a knowledge-base search that finds nothing hands off to a person, while a real question
taken for small talk leaves the customer without an answer. A trained model is saved with the hash of the data it
was trained on, so the bot retrains only when the data (or the encoder) changed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from intents.errors import IntentModelError
from intents.nlu import QUESTION, TrainingExample, examples_digest
from kb_index.classifier import ArticleClassifier
from kb_index.embedding_cache import EmbeddingCache, encode_cached
from kb_index.encoder import Encoder
from kb_index.text import normalize_text

__all__ = ["DEFAULT_THRESHOLD", "REGULARIZATION", "IntentClassifier", "IntentPrediction", "encode_examples"]

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.4
# The L2 penalty of the softmax regression, as scikit-learn's C. Measured on 5 held-out splits of the shipped
# data: C=10 0.933, C=100 0.952, C=1000 0.955 accuracy; C=1000 sends more real questions to small talk.
# Per-intent centroids were measured too and are not kept: 0.833 alone, 0.950-0.952 mixed into the softmax.
REGULARIZATION = 100.0
# Bump when the way a model is trained changes, so that saved models are retrained.
_TRAINING_VERSION = 1
_MANIFEST = "intents.json"


@dataclass(frozen=True)
class IntentPrediction:
    """What a message is: its intent, how sure the classifier was of its best guess, and every intent's share.

    ``fallback`` is True when the best guess was below the threshold and ``intent`` became ``question``;
    ``confidence`` is then still the probability of that guess (``ranking[0]``), not of ``question``.
    """

    intent: str
    confidence: float
    ranking: tuple[tuple[str, float], ...]
    fallback: bool = False

    @property
    def is_question(self) -> bool:
        """Whether the message should go to the knowledge base."""
        return self.intent == QUESTION


class IntentClassifier:
    """Classifies a customer's message into an intent; ``question`` means "search the knowledge base".

    ``threshold`` (default 0.4): a best guess with a lower probability becomes ``question``. Chosen with
    ``evaluate_intents`` on the held-out splits of seeds 0-4 (80/20, stratified by intent and language) of the
    shipped data, as the highest threshold whose mean held-out accuracy stays within half a point of the best:
    0.952 with no threshold, 0.948 at 0.4, 0.937 at 0.5, 0.912 at 0.6. Held-out questions resemble the
    training ones, so there the threshold changes little; on 600 real support questions from outside the data
    (300 RuTube, 300 BANKING77) it raises the share sent to the knowledge base from 0.960 to 0.968 (0.982 at 0.5).
    """

    def __init__(
        self,
        encoder: Encoder,
        model: ArticleClassifier,
        intents: Sequence[str],
        *,
        threshold: float = DEFAULT_THRESHOLD,
        data_digest: str = "",
        trained_at: str = "",
    ) -> None:
        if QUESTION not in intents:
            raise ValueError(f"the intents must include {QUESTION!r}, the answer when the classifier is unsure")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        self.encoder = encoder
        self.intents: tuple[str, ...] = tuple(intents)
        self.threshold = threshold
        self.data_digest = data_digest
        self.trained_at = trained_at
        self._model = model

    @classmethod
    def train(
        cls,
        encoder: Encoder,
        examples: Sequence[TrainingExample],
        *,
        cache: EmbeddingCache | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        regularization: float = REGULARIZATION,
    ) -> IntentClassifier:
        """Encode ``examples`` as queries (through ``cache`` when given) and fit the classifier on them."""
        if not examples:
            raise ValueError("no training examples")
        intents = tuple(sorted({example.intent for example in examples}))
        if QUESTION not in intents:
            raise ValueError(f"the training data has no {QUESTION!r} examples; the classifier falls back to it")
        number = {intent: i for i, intent in enumerate(intents)}
        vectors = encode_examples(encoder, [example.text for example in examples], cache)
        labels = np.array([number[example.intent] for example in examples], dtype=np.int64)
        with _one_torch_thread():
            model = ArticleClassifier.train(vectors, labels, len(intents), regularization=regularization)
        return cls(
            encoder,
            model,
            intents,
            threshold=threshold,
            data_digest=examples_digest(examples),
            trained_at=datetime.now(UTC).isoformat(),
        )

    def with_threshold(self, threshold: float) -> IntentClassifier:
        """The same model with another confidence threshold (from the settings, say)."""
        return IntentClassifier(
            self.encoder,
            self._model,
            self.intents,
            threshold=threshold,
            data_digest=self.data_digest,
            trained_at=self.trained_at,
        )

    @staticmethod
    def normalize(text: str) -> str:
        """The text the classifier encodes: normalised, greetings and thanks kept (they are the intent here).

        The knowledge base strips them, so its vector of the same message differs whenever there are some:
        reuse one vector for both only when ``normalize_text(text)`` equals this.
        """
        return normalize_text(text, strip_pleasantries=False)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors of ``texts``, one row each, ready for ``classify_vector``."""
        return self.encoder.encode_queries([self.normalize(text) for text in texts])

    def classify(self, text: str) -> IntentPrediction:
        """The intent of one message."""
        return self.classify_many([text])[0]

    async def classify_async(self, text: str) -> IntentPrediction:
        """The intent of one message, from async code: encoded with other customers' messages, off the event loop
        (and once for the knowledge base too when its text is the same)."""
        normalized = self.normalize(text)
        if not normalized:
            return IntentPrediction(QUESTION, 0.0, (), fallback=True)
        return self.classify_vector(await self.encoder.encode_query(normalized))

    def classify_many(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """The intents of several messages, encoded in one batch."""
        normalized = [self.normalize(text) for text in texts]
        present = [text for text in normalized if text]
        vectors = iter(self.encoder.encode_queries(present)) if present else iter(())
        # A message of nothing but a link, an address or invisible characters: let the knowledge base decide.
        return [
            self.classify_vector(next(vectors)) if text else IntentPrediction(QUESTION, 0.0, (), fallback=True)
            for text in normalized
        ]

    def classify_vector(self, vector: np.ndarray) -> IntentPrediction:
        """The intent of a message already encoded (a query vector of ``normalize(text)``)."""
        probabilities = self._model.probabilities(np.asarray(vector, dtype=np.float32))
        order = np.argsort(-probabilities, kind="stable")
        ranking = tuple((self.intents[i], float(probabilities[i])) for i in order)
        best, confidence = ranking[0]
        if confidence < self.threshold:
            return IntentPrediction(QUESTION, confidence, ranking, fallback=True)
        return IntentPrediction(best, confidence, ranking)

    def save(self, folder: Path) -> None:
        """Write the model and its manifest into ``folder`` (created if needed)."""
        folder.mkdir(parents=True, exist_ok=True)
        manifest = folder / _MANIFEST
        # The manifest goes first and comes back last, so a reader never pairs new weights with an old manifest.
        manifest.unlink(missing_ok=True)
        staging = folder / f".staging-{os.getpid()}"
        staging.mkdir(exist_ok=True)
        try:
            self._model.save(staging)
            os.replace(staging / ArticleClassifier.FILE, folder / ArticleClassifier.FILE)
        finally:
            for leftover in staging.iterdir():
                leftover.unlink()
            staging.rmdir()
        content = {
            "format": 1,
            "training_version": _TRAINING_VERSION,
            "model_id": self.encoder.model_id,
            "dimension": self.encoder.dimension,
            "intents": list(self.intents),
            "data_digest": self.data_digest,
            "trained_at": self.trained_at,
        }
        partial = folder / f"{_MANIFEST}.{os.getpid()}.tmp"
        partial.write_text(json.dumps(content, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, manifest)

    @classmethod
    def load(cls, folder: Path, encoder: Encoder, *, threshold: float = DEFAULT_THRESHOLD) -> IntentClassifier:
        """The model saved in ``folder``; ``IntentModelError`` when it is missing, damaged or for another encoder."""
        manifest = _read_manifest(folder)
        if manifest.get("model_id") != encoder.model_id or manifest.get("dimension") != encoder.dimension:
            raise IntentModelError(
                f"The intent model in {folder} was trained with the encoder {manifest.get('model_id')!r}, "
                f"not {encoder.model_id!r}; retrain it."
            )
        if manifest.get("training_version") != _TRAINING_VERSION:
            raise IntentModelError(f"The intent model in {folder} was trained by an older Zabota; retrain it.")
        intents = manifest.get("intents")
        if not isinstance(intents, list) or not all(isinstance(name, str) for name in intents):
            raise IntentModelError(f"{folder / _MANIFEST} has no list of intents; retrain the model.")
        try:
            model = ArticleClassifier.load(folder)
        except (OSError, ValueError, KeyError) as exc:
            raise IntentModelError(f"Cannot read the intent model in {folder}: {exc}; retrain it.") from exc
        if model is None:
            raise IntentModelError(f"No intent model in {folder} ({ArticleClassifier.FILE} is missing).")
        try:
            shape = model.probabilities(np.zeros(encoder.dimension, dtype=np.float32)).shape
        except ValueError as exc:
            raise IntentModelError(f"The intent model in {folder} does not fit the encoder: {exc}") from exc
        if shape != (len(intents),):
            raise IntentModelError(f"The intent model in {folder} does not match its manifest; retrain it.")
        try:
            return cls(
                encoder,
                model,
                intents,
                threshold=threshold,
                data_digest=str(manifest.get("data_digest", "")),
                trained_at=str(manifest.get("trained_at", "")),
            )
        except ValueError as exc:
            raise IntentModelError(f"The intent model in {folder} cannot be used: {exc}") from exc

    @classmethod
    def load_or_train(
        cls,
        folder: Path,
        encoder: Encoder,
        examples: Sequence[TrainingExample],
        *,
        cache: EmbeddingCache | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> IntentClassifier:
        """The model saved in ``folder`` if it was trained on exactly ``examples`` with ``encoder``; otherwise a
        model trained now and saved there."""
        digest = examples_digest(examples)
        try:
            saved = cls.load(folder, encoder, threshold=threshold)
        except IntentModelError as exc:
            log.info("Training the intent classifier: %s", exc)
        else:
            if saved.data_digest == digest:
                return saved
            log.info("Training the intent classifier: the training data changed since %s", saved.trained_at)
        trained = cls.train(encoder, examples, cache=cache, threshold=threshold)
        try:
            trained.save(folder)
        except OSError as exc:
            # The bot can still answer; it only trains again at its next start.
            log.warning("Cannot save the intent model in %s (%s); it will be trained again next time", folder, exc)
        return trained


def encode_examples(encoder: Encoder, texts: Sequence[str], cache: EmbeddingCache | None) -> np.ndarray:
    """Query vectors of ``texts`` as the classifier sees them (normalised, pleasantries kept)."""
    normalized = [IntentClassifier.normalize(text) for text in texts]
    if cache is None:
        return encoder.encode_queries(normalized)
    vectors, _ = encode_cached(encoder, cache, normalized, "query")
    return vectors


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Fit on one thread: a regression over 1,500 vectors gains nothing from more, and on a busy two-core machine
    two threads took 18 s where one took 0.7 s (measured). torch's setting is process-wide, so it is restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / _MANIFEST
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IntentModelError(f"No intent model in {folder} ({_MANIFEST} is missing).") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntentModelError(f"Cannot read {path}: {exc}; retrain the model.") from exc
    if not isinstance(content, dict):
        raise IntentModelError(f"{path} is not a JSON object; retrain the model.")
    return content

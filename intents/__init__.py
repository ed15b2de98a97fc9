"""Small talk and service intents: greetings, thanks, asking for a person, frustration.

A plain library, no Telegram: ``IntentClassifier`` tells small talk from a question for the knowledge base
(on the knowledge base's own encoder), ``detect_language`` tells Russian, Ukrainian and English apart, and
``assess`` notices a frustrated customer. Training data is Rasa NLU YAML in ``intents/data/``.
"""

from intents.classifier import DEFAULT_THRESHOLD, IntentClassifier, IntentPrediction
from intents.errors import DataProblem, IntentDataError, IntentModelError, IntentsError
from intents.evaluation import evaluate_intents, split_holdout
from intents.frustration import (
    ConversationTurn,
    FrustrationSignal,
    FrustrationState,
    assess,
    conversation_signals,
    message_signals,
)
from intents.language import LANGUAGES, Language, detect_language, normalize_language_code
from intents.nlu import DEFAULT_DATA_DIR, INTENTS, QUESTION, TrainingExample, default_examples, load_nlu

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_THRESHOLD",
    "INTENTS",
    "LANGUAGES",
    "QUESTION",
    "ConversationTurn",
    "DataProblem",
    "FrustrationSignal",
    "FrustrationState",
    "IntentClassifier",
    "IntentDataError",
    "IntentModelError",
    "IntentPrediction",
    "IntentsError",
    "Language",
    "TrainingExample",
    "assess",
    "conversation_signals",
    "default_examples",
    "detect_language",
    "evaluate_intents",
    "load_nlu",
    "message_signals",
    "normalize_language_code",
    "split_holdout",
]

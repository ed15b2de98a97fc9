"""Signs that a customer is frustrated: in one message (caps lock, "!!!", insults) and in the conversation
(the same question again, two answers in a row that did not help).

Pure functions over text and a short history, no encoder: the bot calls ``assess`` on every message and
offers a person sooner when the customer is frustrated. Reasons are machine codes (``caps_lock``,
``repeated_punctuation``, ``insult``, ``repeated_question``, ``negative_feedback_twice``) for logs and metrics.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from kb_index.text import normalize_text

__all__ = [
    "CAPS_LOCK",
    "INSULT",
    "NEGATIVE_FEEDBACK_TWICE",
    "REPEATED_PUNCTUATION",
    "REPEATED_QUESTION",
    "ConversationTurn",
    "Feedback",
    "FrustrationSignal",
    "FrustrationState",
    "Role",
    "assess",
    "conversation_signals",
    "message_signals",
]

CAPS_LOCK: Final = "caps_lock"
REPEATED_PUNCTUATION: Final = "repeated_punctuation"
INSULT: Final = "insult"
REPEATED_QUESTION: Final = "repeated_question"
NEGATIVE_FEEDBACK_TWICE: Final = "negative_feedback_twice"

Role = Literal["customer", "bot"]
Feedback = Literal["helpful", "not_helpful"]

_CAPS_MIN_LETTERS = 8
_CAPS_SHARE = 0.7
# Three or more of "!" and "?" in a row: "!!!", "???", "?!?!". A single "?!" is ordinary emphasis.
_REPEATED_PUNCT = re.compile(r"[!?¡¿！？]{3,}")
_WORD = re.compile(r"[^\W\d_]+")
_STRETCHED = re.compile(r"([^\W\d_])\1{2,}")
# Stems matched at the start of a word (after lower-casing, "ё" read as "е"). Insults and common profanity aimed at
# the service or the bot; no slurs. "бесполезн" and "useless" catch "бесполезный бот" and "useless bot".
# fmt: off
_INSULT_STEMS: Final = (
    # ru
    "идиот", "дебил", "кретин", "придур", "тупой", "тупая", "тупые", "тупого", "тупица", "тупорыл", "дурак",
    "дура", "дурацк", "бестолк", "бесполезн", "никчемн", "убог", "безмозгл", "недоумк", "отстойн", "говн",
    "дерьм", "сволоч", "ублюд", "мудак", "бля", "блят", "бляд", "хрен", "хер", "пизд", "хуй", "хуе", "охуе", "ебан",
    "ебат", "заеба", "наеба", "уебищ", "сука", "суки",
    # uk
    "ідіот", "дебіл", "тупий", "тупа", "тупі", "дурний", "дурна", "дурні", "бовдур", "бестолков", "нікчемн",
    "марний", "марна", "безглузд", "лайно", "лайна", "гівн", "срак", "курва", "курви",
    # en
    "idiot", "stupid", "dumb", "moron", "useless", "pathetic", "incompetent", "clueless", "brainless", "crap",
    "shit", "bullshit", "fuck", "wtf", "garbage", "rubbish", "sucks", "dickhead", "asshole", "bastard",
)
# fmt: on
# Short stems that also begin ordinary words: matched only as the whole word.
_WHOLE_WORDS: Final = frozenset({"дура", "хер", "сука", "суки", "тупа", "тупі", "бля", "хрен", "crap", "dumb", "wtf"})
_INSULT = re.compile(
    r"\b(?:"
    + "|".join(
        re.escape(stem) + (r"\b" if stem in _WHOLE_WORDS else r"\w*")
        for stem in sorted(_INSULT_STEMS, key=len, reverse=True)
    )
    + r")",
    re.IGNORECASE,
)
_REPEAT_JACCARD = 0.8
_REPEAT_MIN_LETTERS = 8  # "да", "нет", "спасибо" repeat naturally; "оператор" twice does not


@dataclass(frozen=True)
class FrustrationSignal:
    """One sign of frustration: its machine code and what showed it (the insult, the "!!!", the earlier text)."""

    code: str
    evidence: str = ""


@dataclass(frozen=True)
class FrustrationState:
    """Whether the customer looks frustrated now, and why (machine codes, in the order they were found)."""

    frustrated: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConversationTurn:
    """One message of the conversation: who wrote it and, for a bot answer, what the customer said of it."""

    role: Role
    text: str
    feedback: Feedback | None = None
    at: datetime | None = None


def message_signals(text: str) -> list[FrustrationSignal]:
    """Frustration visible in one message: caps lock, repeated "!"/"?", insults or profanity."""
    signals: list[FrustrationSignal] = []
    cased = [ch for ch in text if ch.isalpha() and ch.lower() != ch.upper()]
    uppers = sum(ch.isupper() for ch in cased)
    if len(cased) >= _CAPS_MIN_LETTERS and uppers >= _CAPS_SHARE * len(cased):
        signals.append(FrustrationSignal(CAPS_LOCK, f"{uppers} of {len(cased)} letters upper-case"))
    punct = _REPEATED_PUNCT.search(text)
    if punct is not None:
        signals.append(FrustrationSignal(REPEATED_PUNCTUATION, punct.group(0)))
    # normalize_text undoes the usual disguises: "идиооот", Latin look-alikes inside Cyrillic words, CAPS.
    plain = normalize_text(text, strip_pleasantries=False).lower().replace("ё", "е")
    plain = _STRETCHED.sub(r"\1", plain)  # again: a stretch of look-alikes ("идиooот") is one only once fixed
    insult = _INSULT.search(plain)
    if insult is not None:
        signals.append(FrustrationSignal(INSULT, insult.group(0)))
    return signals


def conversation_signals(
    history: Sequence[ConversationTurn],
    *,
    window: int = 5,
    max_age: timedelta = timedelta(hours=1),
) -> list[FrustrationSignal]:
    """Frustration visible in the conversation, oldest turn first, the customer's latest message last.

    ``repeated_question``: the latest customer message repeats one of the ``window - 1`` customer messages before
    it (same normalised text, or token Jaccard >= 0.8). ``negative_feedback_twice``: the last two bot answers that
    got feedback were both "not helpful". Turns older than ``max_age`` before the latest one are not counted
    (when turns carry no time, all are).
    """
    turns = _recent(history, max_age)
    signals: list[FrustrationSignal] = []
    customer = [turn for turn in turns if turn.role == "customer"][-window:]
    if len(customer) >= 2:
        latest = _tokens(customer[-1].text)
        if latest is not None:
            for earlier in reversed(customer[:-1]):
                tokens = _tokens(earlier.text)
                if tokens is not None and _jaccard(latest, tokens) >= _REPEAT_JACCARD:
                    signals.append(FrustrationSignal(REPEATED_QUESTION, earlier.text))
                    break
    rated = [turn.feedback for turn in turns if turn.role == "bot" and turn.feedback is not None]
    if rated[-2:] == ["not_helpful", "not_helpful"]:
        signals.append(FrustrationSignal(NEGATIVE_FEEDBACK_TWICE, "2 answers in a row did not help"))
    return signals


def assess(
    text: str,
    history: Sequence[ConversationTurn] = (),
    *,
    now: datetime | None = None,
    window: int = 5,
    max_age: timedelta = timedelta(hours=1),
) -> FrustrationState:
    """Is the customer who just wrote ``text`` after ``history`` (oldest first) frustrated, and why?"""
    turns = [*history, ConversationTurn("customer", text, at=now)]
    signals = message_signals(text) + conversation_signals(turns, window=window, max_age=max_age)
    reasons = tuple(dict.fromkeys(signal.code for signal in signals))
    return FrustrationState(frustrated=bool(reasons), reasons=reasons)


def _recent(history: Sequence[ConversationTurn], max_age: timedelta) -> list[ConversationTurn]:
    times = [turn.at for turn in history if turn.at is not None]
    if not times:
        return list(history)
    cutoff = max(times) - max_age
    return [turn for turn in history if turn.at is None or turn.at >= cutoff]


def _tokens(text: str) -> frozenset[str] | None:
    """The words of a message as a set, or None when it is too short to count as a repeated question."""
    plain = normalize_text(text).lower().replace("ё", "е")
    words = _WORD.findall(plain)
    if sum(len(word) for word in words) < _REPEAT_MIN_LETTERS:
        return None
    return frozenset(words)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b)

"""The language of a customer's message: Russian, Ukrainian or English, from its letters and common words.

Fast (a regular expression and two word sets, no model): it runs on every message before the knowledge base is
searched. What a customer pastes rather than writes (links, e-mail addresses, HTML tags and entities, @names)
does not count, and the script is decided by words, not letters, so "tracking number не работает" from a
customer whose Telegram is in Russian stays Russian. Letters only one of the two Cyrillic alphabets has (ы э ъ ё against і ї є ґ) are strong evidence, and
so is a Ukrainian word; one common Russian word is weak evidence, so a lone "спасибо" from a customer whose
Telegram is in Ukrainian stays Ukrainian. Too little to go on ("ok", "?", "👍") falls back to the prior,
Telegram's ``language_code``.
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Language", "detect_language", "normalize_language_code"]

Language = Literal["ru", "uk", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("ru", "uk", "en")
DEFAULT_LANGUAGE: Final[Language] = "ru"

_WORD = re.compile(r"[^\W\d_]+(?:['’ʼ][^\W\d_]+)*")
_LATIN = re.compile(r"[a-zA-Z]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_RU_LETTERS = frozenset("ыэъё")
_UK_LETTERS = frozenset("іїєґ")
# Frequent words of one language that the other does not use (or writes differently): "как"/"як", "что"/"що".
_RU_WORDS = frozenset(
    """
    что как это где когда почему зачем какой какая какие можно нужно надо мне меня мой моя моё мои ещё уже
    или если только пожалуйста спасибо здравствуйте привет заказ заказа заказе деньги нет да хорошо сейчас
    сегодня вчера завтра вы ваш ваша ваши вас вам они его ее её был была было были будет хочу тоже очень
    почта доставку товара помогите скажите подскажите оплатить вернуть отменить получить пришел пришла
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_UK_WORDS = frozenset(
    """
    що як це де коли чому навіщо який яка які чи можна потрібно треба мені мене мій моя моє мої ще вже або
    якщо тільки лише будь ласка дякую вітаю привіт добрий замовлення гроші ні добре зараз сьогодні вчора завтра
    ви ваш ваша ваші вас вам вони його її був була було були буде хочу теж дуже пошта доставку товару
    допоможіть скажіть підкажіть оплатити повернути скасувати отримати прийшов прийшла та й але
    """.split()  # noqa: SIM905
)
# Words both languages share ("хочу", "вам", "доставку") are in both sets and count for neither.
_SHARED = _RU_WORDS & _UK_WORDS
_CYRILLIC_SCRIPT_CODES = frozenset({"be", "bg", "kk", "ky", "mk", "mn", "sr", "tg", "tt", "ba", "cv", "ce"})
_MIN_LATIN_LETTERS = 5  # "ok", "hi", "thx" say nothing about the language a customer reads
# Pasted, not written: links (with or without a scheme), e-mail addresses, HTML tags and entities, @names.
_PASTED = re.compile(
    r"(?:https?://|www\.)\S+|\S+@\S+|@\w+|</?[a-zA-Z][^>]*>|&[a-zA-Z]+;|&#\d+;"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|ru|ua|by|kz|io|me|info|shop|store|рф)\b\S*",
    re.IGNORECASE,
)
_SCRIPT_WORD = re.compile(r"[a-zA-Z]{2,}|[\u0400-\u04ff]{2,}")


def normalize_language_code(code: str | None) -> Language | None:
    """Telegram's ``language_code`` as one of Zabota's languages, or None when there is none.

    "ru-RU" -> "ru"; "uk" and the common mistake "ua" -> "uk"; "en-GB" -> "en"; another language written in
    Cyrillic ("be", "kk", ...) -> "ru", the one its speakers most likely read; any other language -> "en".
    """
    if not code:
        return None
    base = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    if base in ("ru", "uk", "en"):
        return base  # type: ignore[return-value]
    if base == "ua":
        return "uk"
    if base in _CYRILLIC_SCRIPT_CODES:
        return "ru"
    return "en" if base else None


def detect_language(text: str, prior: str | None = None) -> Language:
    """The language of ``text``: "ru", "uk" or "en".

    ``prior`` (Telegram's ``language_code``) decides when the text cannot. Without a usable prior the default
    is Russian for Cyrillic and English for Latin text.
    """
    fallback = normalize_language_code(prior)
    text = _PASTED.sub(" ", text)
    words = _SCRIPT_WORD.findall(text)
    latin_words = sum(1 for w in words if _LATIN.match(w))
    cyrillic_words = len(words) - latin_words
    latin = len(_LATIN.findall(text))
    cyrillic = len(_CYRILLIC.findall(text))
    if latin_words > cyrillic_words or (latin_words == cyrillic_words and latin > cyrillic and fallback in (None, "en")):
        if latin >= _MIN_LATIN_LETTERS or fallback is None:
            return "en"
        return fallback
    if latin_words == cyrillic_words and latin_words and fallback == "en":
        return "en"
    if cyrillic == 0:
        return fallback or DEFAULT_LANGUAGE
    strong = {"ru": 0, "uk": 0}
    weak = {"ru": 0, "uk": 0}
    for word in _WORD.findall(text.lower()):
        letters = set(word)
        if letters & _UK_LETTERS and not letters & _RU_LETTERS:
            strong["uk"] += 1
        elif letters & _RU_LETTERS and not letters & _UK_LETTERS:
            strong["ru"] += 1
        elif word in _SHARED:
            continue
        elif word in _UK_WORDS:
            weak["uk"] += 1
        elif word in _RU_WORDS:
            weak["ru"] += 1
    # A word with a language's own letter settles more than "как" or "як" does. A Ukrainian word counts as much:
    # Ukrainians write Russian words every day ("спасибо", "привет"), Russians hardly ever write "дякую".
    ru = 2 * strong["ru"] + weak["ru"]
    uk = 2 * strong["uk"] + 2 * weak["uk"]
    cyrillic_prior: Language | None = fallback if fallback in ("ru", "uk") else None
    if ru == uk:
        return cyrillic_prior or DEFAULT_LANGUAGE
    winner: Language = "ru" if ru > uk else "uk"
    if abs(ru - uk) == 1 and cyrillic_prior is not None:
        # One common Russian word and nothing else: keep the language the customer's Telegram is in.
        return cyrillic_prior
    return winner

"""Text normalisation shared by knowledge-base articles and customers' questions.

Customers paste links, invisible characters and greetings, type in CAPS, stretch letters ("помогитеее") and
mix Latin look-alike letters into Cyrillic words. Everything here removes that noise before a text is
embedded, so that the meaning of the question, not its packaging, decides the match.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["markdown_to_plain", "normalize_text"]

# Zero-width and formatting characters that NFKC keeps: ZW space/joiners, LRM/RLM, word joiner, BOM, soft hyphen.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_URL = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:ru|com|net|org|ua|рф|su|io|me|info|biz|example)\b(?:/\S*)?",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_REPEATED_PUNCT = re.compile(r"([!?.,)(])\1+")
_STRETCHED_LETTER = re.compile(r"([^\W\d_])\1{2,}")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d_]+")

_GREETING_WORDS = (
    # ru
    r"здравствуйте|здравствуй|здрасьте|здрасте|добрый\s+(?:день|вечер)|доброе\s+утро|доброй\s+ночи"
    r"|доброго\s+(?:дня|вечера|утра|времени\s+суток)|привет(?:ствую)?|салют"
    # uk
    r"|добрий\s+(?:день|вечір|ранок)|доброго\s+ранку|вітаю|привіт|здрастуйте"
    # en
    r"|hello|hi|hey|good\s+(?:morning|afternoon|evening|day)|greetings|dear(?:\s+(?:support|customer|service|team|sirs?))*"
)
_POLITE_WORDS = (
    r"подскажите|скажите|пожалуйста|извините|простите|будьте\s+добры|уважаемые|коллеги"
    r"|підкажіть|скажіть|будь\s+ласка|вибачте|перепрошую|шановні"
    r"|please|excuse\s+me|sorry|could\s+you\s+tell\s+me"
)
_THANKS_WORDS = (
    r"заранее\s+спасибо|спасибо(?:\s+заранее)?|благодарю|заздалегідь\s+дякую|дякую(?:\s+заздалегідь)?"
    r"|thanks?(?:\s+you)?(?:\s+in\s+advance)?|thx"
)
_LEADING = re.compile(rf"^(?:(?:{_GREETING_WORDS}|{_POLITE_WORDS})\b[\s,.!:;)(-]*)+", re.IGNORECASE)
_TRAILING = re.compile(rf"[\s,.!;)(-]*(?:{_THANKS_WORDS})[\s,.!)(]*$", re.IGNORECASE)

# Letters that look the same in both alphabets; a word written mostly in one alphabet gets the other's
# look-alikes replaced ("зaкaз" with Latin "a" becomes "заказ").
_LATIN_TO_CYRILLIC = dict(zip("aceopxykmiACEOPXYKMHTBI", "асеорхукміАСЕОРХУКМНТВІ"))
_CYRILLIC_TO_LATIN = {c: latin for latin, c in _LATIN_TO_CYRILLIC.items() if latin not in "mM"}


def _script(ch: str) -> str:
    if "a" <= ch.lower() <= "z":
        return "latin"
    if "\u0400" <= ch <= "\u04ff":
        return "cyrillic"
    return "other"


def _fix_mixed_script(match: re.Match[str]) -> str:
    word = match.group(0)
    scripts = [_script(ch) for ch in word]
    latin, cyrillic = scripts.count("latin"), scripts.count("cyrillic")
    if not latin or not cyrillic:
        return word
    table = _LATIN_TO_CYRILLIC if cyrillic >= latin else _CYRILLIC_TO_LATIN
    return "".join(table.get(ch, ch) for ch in word)


def _mostly_upper(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return len(letters) >= 6 and sum(ch.isupper() for ch in letters) >= 0.7 * len(letters)


def normalize_text(text: str, *, strip_pleasantries: bool = True) -> str:
    """Return ``text`` with its noise removed: what a person means, in a form the encoder reads well.

    Unicode NFKC; invisible and control characters dropped; links and e-mail addresses removed; repeated
    punctuation and stretched letters shortened; CAPS LOCK lowered; Latin look-alikes inside Cyrillic words
    (and the reverse) replaced; and, with ``strip_pleasantries``, greetings and politeness at the start and
    thanks at the end removed. A text that is nothing but a greeting comes back empty.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    text = _URL.sub(" ", _EMAIL.sub(" ", text))
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _STRETCHED_LETTER.sub(r"\1", text)
    if _mostly_upper(text):
        text = text.lower()
    text = _WORD.sub(_fix_mixed_script, text)
    text = _SPACES.sub(" ", text).strip()
    if strip_pleasantries:
        text = _LEADING.sub("", text)
        text = _TRAILING.sub("", text).strip()
    return text


_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
_MD_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.MULTILINE)


def markdown_to_plain(text: str) -> str:
    """The words of a Markdown answer without its markup: link texts stay, addresses and emphasis marks go."""
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_EMPHASIS.sub("", text)
    return _MD_LIST_MARK.sub("", text)

"""User-facing texts in the customers' languages, read from per-language YAML files (``locales/ru.yml`` ...).

Every language must define the same keys with the same placeholders; a file that does not is refused at
start-up with the key and the file named, rather than failing in front of a customer.
"""

from __future__ import annotations

import string
from pathlib import Path

import yaml

from intents.language import normalize_language_code
from kb_index.errors import ZabotaError

__all__ = ["CUSTOMER_LOCALES", "Texts", "TextsError"]

# What the bot says to customers, in every language it speaks.
CUSTOMER_LOCALES = Path(__file__).parent / "locales"


class TextsError(ZabotaError):
    """A locale file is missing, unreadable, or disagrees with the other languages."""


class Texts:
    """A catalogue of texts by language and key, with a default language for everything else."""

    def __init__(self, catalogue: dict[str, dict[str, str]], default_lang: str = "ru") -> None:
        if default_lang not in catalogue:
            raise TextsError(f"no texts for the default language {default_lang!r}")
        self._catalogue = catalogue
        self.default_lang = default_lang
        _check_consistent(catalogue)

    @classmethod
    def load(cls, folder: Path, default_lang: str = "ru") -> Texts:
        catalogue: dict[str, dict[str, str]] = {}
        for path in sorted(folder.glob("*.yml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise TextsError(f"{path}: cannot be read ({exc})") from exc
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                raise TextsError(f"{path}: every entry must be 'key: text'")
            catalogue[path.stem] = {str(k): v for k, v in data.items()}
        if not catalogue:
            raise TextsError(f"{folder}: no locale files (*.yml)")
        return cls(catalogue, default_lang)

    @property
    def languages(self) -> list[str]:
        return sorted(self._catalogue)

    def lang(self, lang: str | None) -> str:
        """``lang`` if there are texts in it, otherwise the default language."""
        return lang if lang in self._catalogue else self.default_lang

    def for_code(self, code: str | None) -> str:
        """The language to speak to someone whose app (Telegram's ``language_code``) is set to ``code``."""
        return self.lang(normalize_language_code(code))

    def get(self, lang: str | None, key: str, /, **params: object) -> str:
        template = self._catalogue[self.lang(lang)][key]
        return template.format(**params) if params else template

    def keys(self) -> list[str]:
        """The keys of the catalogue (the same in every language)."""
        return sorted(self._catalogue[self.default_lang])

    def variants(self, key: str) -> set[str]:
        """The text of ``key`` in every language (to recognise a tap on a reply-keyboard button)."""
        return {texts[key] for texts in self._catalogue.values()}


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def _check_consistent(catalogue: dict[str, dict[str, str]]) -> None:
    languages = sorted(catalogue)
    reference = catalogue[languages[0]]
    for lang in languages[1:]:
        texts = catalogue[lang]
        missing = sorted(set(reference) ^ set(texts))
        if missing:
            raise TextsError(f"{lang} and {languages[0]} differ in keys: {', '.join(missing)}")
        for key, template in texts.items():
            if _placeholders(template) != _placeholders(reference[key]):
                raise TextsError(f"{lang}.yml '{key}' has other placeholders than {languages[0]}.yml")

"""Redis answers as the text they are.

Every Redis client of the product decodes answers (``decode_responses=True``), but redis-py types each answer
as bytes or str; these say which, once, where an answer is read, so the type checker can hold the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from redis.typing import EncodableT, FieldT

__all__ = ["fields_of", "optional_text", "text", "text_map", "texts"]


def fields_of(mapping: Mapping[str, str]) -> dict[FieldT, EncodableT]:
    """A record's fields as a hash or a stream entry is written from."""
    return dict(mapping.items())


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def optional_text(value: Any) -> str | None:
    return None if value is None else text(value)


def texts(values: Iterable[Any] | None) -> list[str]:
    return [text(value) for value in values or ()]


def text_map(mapping: Mapping[Any, Any] | None) -> dict[str, str]:
    return {text(key): text(value) for key, value in (mapping or {}).items()}

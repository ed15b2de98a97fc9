"""Structured logs (one JSON object per line) with customers' personal data masked.

Whatever a module logs (a customer's message in a debug line, an exception that quotes one) passes through
``mask_personal_data`` before it is written: phone numbers, e-mail addresses and payment card numbers never
reach a log file or a log collector.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

__all__ = ["JsonFormatter", "MaskingFilter", "configure_logging", "mask_personal_data"]

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+", re.UNICODE)
# 13-19 digits, optionally in groups separated by spaces or dashes (how people type card numbers).
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# International or local phone numbers: +7 (999) 123-45-67, 8 999 123 45 67, +380501234567, (044) 123-4567.
_PHONE = re.compile(r"(?<![\w+])(?:\+?\d{1,3}[\s-]?)?(?:\(\d{2,5}\)[\s-]?)?\d{2,4}(?:[\s-]?\d{2,4}){1,4}(?!\w)")


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    if 13 <= len(digits) <= 19 and _luhn(digits):
        return f"[card *{digits[-4:]}]"
    if len(digits) == 16:  # grouped like a card but mistyped: still a card number to the customer
        return "[card]"
    return match.group()


def _phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or re.match(r"\d{4}-\d{2}-\d{2}", text):  # a date (and time)
        return text
    if text.startswith("+") or re.fullmatch(r"(?:[78]9\d{9}|380\d{9}|0\d{9})", digits):
        return "[phone]"  # international, or a Russian or Ukrainian mobile however it is grouped
    groups = [g for g in re.split(r"[\s()+-]+", text) if g]
    if re.fullmatch(r"\d{1,3}(?: \d{3})+", text):
        return text  # an amount with thousands separated: 1 000 000
    if len(groups) > 1:
        # Written like a phone number: groups of at most four digits (+7 999 123-45-67, (044) 123 4567, 123-45-67).
        # Longer groups are dates, versions and ids (20261122-235959), not phones.
        return "[phone]" if all(len(g) <= 4 for g in groups[1:]) and len(groups[0]) <= 5 else text
    return text  # one run of digits in no phone shape: an order number, an amount, an id


def mask_personal_data(text: str) -> str:
    """The text with e-mail addresses, card numbers (Luhn-valid) and phone numbers replaced by placeholders."""
    if not text:
        return text
    text = _EMAIL.sub("[email]", text)
    text = _CARD.sub(_card, text)
    return _PHONE.sub(_phone, text)


class MaskingFilter(logging.Filter):
    """Masks personal data in the record's message and exception text; attach it to every handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the code that logs
            message = f"{record.msg!r} {record.args!r}"
        masked = mask_personal_data(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_personal_data(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "message": ..., "exc": ...}`` plus any ``extra=`` fields."""

    _standard = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._standard and not key.startswith("_"):
                entry[key] = mask_personal_data(value) if isinstance(value, str) else value
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_personal_data(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the moment (it may be replaced after logging is set up)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> logging.Handler:
    """One handler on the root logger: JSON lines (``fmt="json"``) or plain text, always masked."""
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    return handler

"""Which channel a customer is on, read off his chat id.

Tickets, surveys and conversation logs identify a customer by one number, his chat id. Telegram's own ids stay
below 2**52 in absolute value; the other channels give their customers ids from ranges of their own below that,
each still exact as a float (below 2**53), so the relay, the monitor and the surveys know from the number alone
which channel reaches him, and a ticket opened on any channel can be served by an agent on any other.
``qualified`` names a customer as people read it: ``telegram:123``, ``rasa:5``, ``web:17``.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Channel", "channel_of", "chat_id_in", "number_in", "qualified"]

_TELEGRAM_LIMIT = 2**52
_RANGE = 2**50  # room for a billion billion customers per channel


class Channel(StrEnum):
    TELEGRAM = "telegram"
    RASA = "rasa"
    WEB = "web"


_FIRST = {Channel.RASA: _TELEGRAM_LIMIT, Channel.WEB: _TELEGRAM_LIMIT + _RANGE}


def chat_id_in(channel: Channel, number: int) -> int:
    """The chat id of the ``number``-th customer (from 1) of a channel that numbers its own customers."""
    if channel is Channel.TELEGRAM:
        return number
    if not 1 <= number < _RANGE:
        raise ValueError(f"customer number {number} is outside 1..{_RANGE - 1}")
    return -(_FIRST[channel] + number)


def channel_of(chat_id: int) -> Channel:
    if chat_id > -_TELEGRAM_LIMIT:
        return Channel.TELEGRAM
    if chat_id > -(_TELEGRAM_LIMIT + _RANGE):
        return Channel.RASA
    return Channel.WEB


def number_in(chat_id: int) -> int:
    """The customer's number within his channel (his Telegram id for Telegram)."""
    channel = channel_of(chat_id)
    return chat_id if channel is Channel.TELEGRAM else -chat_id - _FIRST[channel]


def qualified(chat_id: int) -> str:
    """``telegram:123``, ``rasa:5``, ``web:17``: the customer as agents and reports name him."""
    return f"{channel_of(chat_id).value}:{number_in(chat_id)}"

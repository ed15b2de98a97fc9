"""The emulator's exceptions: misuse from the user side, and the Bot API's own error answers.

EmulatorError                   a test or a person asked the emulator for something impossible
├── ChatNotFoundError           (also a LookupError) no such chat
├── MessageNotFoundError        (also a LookupError) no such message in the chat
├── ButtonNotFoundError         (also a LookupError) the message has no such inline button
└── EmulatorTimeoutError        (also a TimeoutError) the bot did not do what was awaited in time

BotApiError                     an error answer of the Bot API ({"ok": false, ...}); internal to the server
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BotApiError",
    "ButtonNotFoundError",
    "ChatNotFoundError",
    "EmulatorError",
    "EmulatorTimeoutError",
    "MessageNotFoundError",
]


class EmulatorError(Exception):
    """Something asked of the emulator (from Python or ``/_emulator/``) cannot be done; the message says why."""


class ChatNotFoundError(EmulatorError, LookupError):
    pass


class MessageNotFoundError(EmulatorError, LookupError):
    pass


class ButtonNotFoundError(EmulatorError, LookupError):
    pass


class EmulatorTimeoutError(EmulatorError, TimeoutError):
    pass


class BotApiError(Exception):
    """An error answer exactly as Telegram gives it: HTTP status, description and optional parameters."""

    def __init__(self, error_code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {reason}")


def forbidden(reason: str) -> BotApiError:
    return BotApiError(403, f"Forbidden: {reason}")

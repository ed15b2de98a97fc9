"""Chat with the bot from the terminal, as a customer (and, with ``:agent``, as a support agent).

The bot runs for real against the Bot API emulator; this is the customer's Telegram app in text form. A typed
line is a message; a number picks a button of the bot's last message; ``:agent /online`` speaks as the
agent. Lines can also come from standard input, so a conversation can be scripted.
"""

from __future__ import annotations

import asyncio
import html
import re
import sys
from collections.abc import AsyncIterator
from typing import TextIO

from bot.emulator import ChatMessage, EmulatedUser, TelegramEmulator, buttons

__all__ = ["TerminalChat", "read_lines"]

_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """Telegram HTML as the terminal shows it."""
    return html.unescape(_TAG.sub("", text))


async def read_lines(stream: TextIO, prompt: str) -> AsyncIterator[str]:
    interactive = stream.isatty()
    while True:
        if interactive:
            try:
                line = await asyncio.to_thread(input, prompt)
            except EOFError:
                return
        else:
            line = await asyncio.to_thread(stream.readline)
            if not line:
                return
            line = line.rstrip("\n")
        yield line


class TerminalChat:
    """Types for a customer and an agent, and prints what the bot sends to each of them."""

    def __init__(
        self,
        emulator: TelegramEmulator,
        customer: EmulatedUser,
        agent: EmulatedUser | None = None,
        *,
        out: TextIO = sys.stdout,
        quiet: float = 1.2,
        patience: float = 30.0,
        echo: bool = False,
    ) -> None:
        self.emulator = emulator
        self.customer = customer
        self.agent = agent
        self.out = out
        self.quiet = quiet
        self.patience = patience
        self.echo = echo
        self._printed: dict[int, dict[int, int]] = {}  # chat -> message id -> versions printed

    async def run(self, lines: AsyncIterator[str]) -> None:
        async for line in lines:
            if not line.strip():
                continue
            if self.echo:
                print(f"> {line}", file=self.out)
            await self.say(line)
            await self.show_replies()

    async def say(self, line: str) -> None:
        user = self.customer
        text = line.strip()
        if text.startswith(":agent") and self.agent is not None:
            user, text = self.agent, text[len(":agent"):].strip()
        if text.isdigit():
            last = self._last_with_buttons(user.id)
            options = buttons(last) if last is not None else []
            if 1 <= int(text) <= len(options):
                assert last is not None
                await self.emulator.press_button(user, last, options[int(text) - 1].data or options[int(text) - 1].text)
                return
        await self.emulator.send_message(user, text)

    def _last_with_buttons(self, chat_id: int) -> ChatMessage | None:
        for message in reversed(self.emulator.bot_messages(chat_id)):
            if buttons(message):
                return message
        return None

    def _count(self) -> int:
        chats = [self.customer.id] + ([self.agent.id] if self.agent else [])
        return sum(len(m.history) + 1 for chat in chats for m in self.emulator.bot_messages(chat))

    async def show_replies(self) -> None:
        """Wait until the bot has been quiet for a moment, then print what it sent since the last time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        seen = self._count()
        while loop.time() < deadline:
            try:
                await self.emulator.wait_until(lambda seen=seen: self._count() != seen, timeout=self.quiet)
            except Exception:  # quiet for a moment: the bot has answered
                break
            seen = self._count()
        self._print_new(self.customer.id, "")
        if self.agent is not None:
            self._print_new(self.agent.id, "[agent] ")

    def _print_new(self, chat_id: int, prefix: str) -> None:
        printed = self._printed.setdefault(chat_id, {})
        for message in self.emulator.bot_messages(chat_id):
            versions = len(message.history) + 1
            before = printed.get(message.message_id, 0)
            if before == versions:
                continue
            printed[message.message_id] = versions
            label = "🤖" if before == 0 else "🤖 (edited)"
            text = plain(message.text or "")
            if before and not text:
                continue
            if before and message.history and plain(str(message.history[-1].get("text", ""))) == text:
                continue  # only the buttons changed
            print(f"{prefix}{label} " + text.replace("\n", "\n" + " " * (len(prefix) + 3)), file=self.out)
            for number, button in enumerate(buttons(message), start=1):
                print(f"{prefix}   [{number}] {button.text}", file=self.out)
        self.out.flush()

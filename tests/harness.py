"""Running the real application in tests: a real Redis, the Bot API emulator, the real dispatcher polling it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from bot.emulator import ChatMessage, EmulatedUser, TelegramEmulator, buttons
from bot.factory import Application, build_application
from bot.settings import (
    AppSettings,
    DialogSettings,
    HandoffSettings,
    KbSettings,
    RedisSettings,
    Settings,
    SurveySettings,
    TelegramSettings,
)
from kb_index import Encoder
from tests.conftest import MODEL_CACHE, SAMPLE_KB

AGENT_ID = 7001
SECOND_AGENT_ID = 7002
SUPERVISOR_ID = 7100
ADMIN_ID = 7200


def make_settings(
    data_dir: Path,
    redis_url: str,
    api_base: str,
    surveys: dict[str, object] | None = None,
    *,
    paced: bool = True,
    **handoff: object,
) -> Settings:
    hand = {
        "agent_ids": [AGENT_ID, SECOND_AGENT_ID],
        "supervisor_ids": [SUPERVISOR_ID],
        "admin_ids": [ADMIN_ID],
        "working_hours": "24/7",
        **handoff,
    }
    return Settings(
        app=AppSettings(data_dir=data_dir, cache_dir=MODEL_CACHE),
        kb=KbSettings(source=SAMPLE_KB),
        telegram=TelegramSettings(api_base=api_base, outgoing_limits=paced),
        redis=RedisSettings(url=redis_url),
        dialog=DialogSettings(),
        handoff=HandoffSettings(**hand),  # type: ignore[arg-type]
        surveys=SurveySettings(**(surveys or {})),  # type: ignore[arg-type]
    )


@dataclass
class Running:
    """The application, polling the emulator."""

    app: Application
    emulator: TelegramEmulator
    polling: asyncio.Task[None]

    async def say(self, user: EmulatedUser, text: str, count: int = 1, timeout: float = 15.0) -> list[ChatMessage]:
        await self.emulator.send_message(user, text)
        return await self.emulator.wait_for_bot_messages(user.id, count, timeout=timeout)

    async def talking_with(self, customer: EmulatedUser, agent: EmulatedUser) -> None:
        """The customer asks for a person and ``agent``, who goes on shift, takes him with /next."""
        await self.say(agent, "/online")
        await self.say(customer, "позовите оператора")
        await self.emulator.wait_for_bot_messages(agent.id, 1, timeout=15)  # the new ticket
        await self.say(agent, "/next")  # the context card
        await self.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)  # "... joined"

    async def tap(self, user: EmulatedUser, message: ChatMessage, label: str, count: int = 1) -> list[ChatMessage]:
        await self.emulator.press_button(user, message, label)
        return await self.emulator.wait_for_bot_messages(user.id, count, timeout=15.0)

    async def settle(self, chat_id: int, quiet: float = 0.5) -> list[ChatMessage]:
        """Every message the bot sends into the chat until it has been quiet for ``quiet`` seconds."""
        received: list[ChatMessage] = []
        while True:
            try:
                received += await self.emulator.wait_for_bot_messages(chat_id, 1, timeout=quiet)
            except Exception:
                return received


def labels(message: ChatMessage) -> list[str]:
    return [b.text for b in buttons(message)]


async def prepared_data_dir(root: Path, encoder: Encoder, redis_url: str) -> Path:
    """A data folder with the sample knowledge base indexed and the intents trained, built once per session."""
    data = root / "prepared"
    if not (data / "kb" / "CURRENT").exists():
        async with TelegramEmulator() as emulator:
            settings = make_settings(data, redis_url, emulator.base_url)
            app = await build_application(settings, encoder=encoder, token=emulator.token)
            await app.close()
    return data


@contextlib.asynccontextmanager
async def running_app(
    tmp: Path,
    prepared: Path,
    encoder: Encoder,
    redis_url: str,
    surveys: dict[str, object] | None = None,
    *,
    paced: bool = False,
    **handoff: object,
) -> AsyncIterator[Running]:
    """The application polling a fresh emulator, on a copy of the prepared data.

    Telegram's outgoing pacing (a chat's messages a second apart, 30 a second in all) is off unless ``paced``:
    the tests of the pacing itself turn it on; for every other test it would only add waiting.
    """
    data = tmp / "data"
    shutil.copytree(prepared, data, ignore=shutil.ignore_patterns("redis"))
    async with TelegramEmulator() as emulator:
        settings = make_settings(data, redis_url, emulator.base_url, surveys, paced=paced, **handoff)
        app = await build_application(settings, encoder=encoder, token=emulator.token)
        app.start_background()
        polling = asyncio.create_task(app.run_polling(timeout=1))
        try:
            yield Running(app, emulator, polling)
        finally:
            app.stop()
            await asyncio.gather(polling, return_exceptions=True)
            await app.close()


async def flush(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()

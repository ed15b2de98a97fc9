"""The bot process is killed in the middle of a relay and started again: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from bot.emulator import EmulatedUser, TelegramEmulator
from handoff.tickets import TicketState
from tests.conftest import MODEL_CACHE, REPO
from tests.harness import AGENT_ID

pytestmark = pytest.mark.slow  # kills and restarts a bot process

AGENT = EmulatedUser(id=AGENT_ID, first_name="Ольга", language_code="ru")
CUSTOMER = EmulatedUser(id=901, first_name="Пётр", language_code="ru")


async def start_bot(emulator: TelegramEmulator, redis_url: str, data: Path) -> asyncio.subprocess.Process:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data),
        "TELEGRAM_BOT_TOKEN": emulator.token,
        "TELEGRAM_API_BASE": emulator.base_url,
        "REDIS_URL": redis_url,
        "ZABOTA_DATA_DIR": str(data),
        "ZABOTA_CACHE_DIR": str(MODEL_CACHE),
        "ZABOTA_LOG_LEVEL": "WARNING",
        "HANDOFF_AGENT_IDS": str(AGENT_ID),
        "HANDOFF_WORKING_HOURS": "24/7",
        "WEB_PORT": "0",  # the web channel on a free port: several processes on one host
    }
    with open(data / "bot.log", "ab") as log:  # the child keeps its own copy of the descriptor
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log
        )
    await emulator.wait_until(lambda: emulator.long_polls_waiting > 0, timeout=120, what="the bot polling")
    return process


def texts(emulator: TelegramEmulator, chat_id: int) -> list[str]:
    return [m.text or "" for m in emulator.bot_messages(chat_id)]


async def test_a_killed_bot_restarts_without_losing_or_doubling_relayed_messages(
    tmp_path: Path, prepared: Path, clean_redis: str
) -> None:
    data = tmp_path / "data"
    shutil.copytree(prepared, data, ignore=shutil.ignore_patterns("redis"))
    async with TelegramEmulator() as emulator:
        bot = await start_bot(emulator, clean_redis, data)
        try:
            await emulator.send_message(AGENT, "/online")
            await emulator.wait_for_bot_messages(AGENT.id, 1, timeout=30)
            await emulator.send_message(CUSTOMER, "позовите оператора")
            await emulator.wait_for_bot_messages(CUSTOMER.id, 1, timeout=30)
            await emulator.wait_for_bot_messages(AGENT.id, 1, timeout=30)  # the announcement
            await emulator.send_message(AGENT, "/next")
            await emulator.wait_for_bot_messages(AGENT.id, 1, timeout=30)  # the context card
            await emulator.wait_for_bot_messages(CUSTOMER.id, 1, timeout=30)  # "... joined"

            # Both write at once; the bot is killed while the messages are being relayed.
            for number in range(1, 21):
                await emulator.send_message(CUSTOMER, f"клиент {number}")
                await emulator.send_message(AGENT, f"сотрудник {number}")
            await emulator.wait_until(
                lambda: sum(t.startswith("сотрудник") for t in texts(emulator, CUSTOMER.id)) >= 3,
                timeout=30,
                what="the relay under way",
            )
            # Telegram asks the bot to wait a minute; the kill comes while the relay waits, between two sends.
            for method in ("sendMessage", "copyMessage"):
                emulator.inject_error(method, 429, "Too Many Requests: retry after 60", retry_after=60)
            await emulator.wait_until(
                lambda: any(r.status == 429 for r in emulator.requests), timeout=30, what="a 429 answered"
            )
        finally:
            bot.send_signal(signal.SIGKILL)
            await bot.wait()

        emulator.clear_injected_errors()
        relayed_before = sum(t.startswith("сотрудник") for t in texts(emulator, CUSTOMER.id))
        assert relayed_before < 20, "the kill came too late to test anything"
        bot = await start_bot(emulator, clean_redis, data)
        try:
            await emulator.wait_until(
                lambda: sum(t.startswith("сотрудник") for t in texts(emulator, CUSTOMER.id)) >= 20
                and sum("клиент " in t for t in texts(emulator, AGENT.id)) >= 20,
                timeout=90,
                what="every message relayed after the restart: "
                + repr((texts(emulator, CUSTOMER.id), texts(emulator, AGENT.id)))
                + (data / "bot.log").read_text()[-3000:],
            )
            await asyncio.sleep(3)  # anything doubled would arrive now
        finally:
            bot.send_signal(signal.SIGTERM)
            await bot.wait()

    to_customer = [t for t in texts(emulator, CUSTOMER.id) if t.startswith("сотрудник")]
    to_agent = [t.split("\n", 1)[1] for t in texts(emulator, AGENT.id) if "\nклиент " in t]
    assert to_customer == [f"сотрудник {n}" for n in range(1, 21)]
    assert to_agent == [f"клиент {n}" for n in range(1, 21)]

    import redis.asyncio as aioredis

    from handoff import HandoffDesk

    client = aioredis.Redis.from_url(clean_redis, decode_responses=True)
    try:
        ticket = await HandoffDesk(client).open_ticket_of(CUSTOMER.id)
        assert ticket is not None and ticket.state is TicketState.ASSIGNED and ticket.agent_id == AGENT_ID
    finally:
        await client.aclose()

"""A bot process killed at any moment loses no customer and tells nobody anything twice.

A real `zabota run` (long polling, the default mode, or webhook mode) against the emulator and a real Redis.
Forty customers ask at once; the process gets SIGKILL three times and is started again: once as the updates
have just reached it (before most are handled), twice while answers are going out. Every customer must get
what a customer asking the same before any kill got: the same messages, in order, none missing; only a message
in flight at the instant of a kill may come twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.emulator import EmulatedUser, TelegramEmulator
from bot.redis_server import EmbeddedRedis
from tests.bot.test_scale_out import free_port
from tests.conftest import MODEL_CACHE, REPO, SAMPLE_KB

pytestmark = pytest.mark.slow

CUSTOMERS = 40
SECRET = "kill-test-secret"
# Answered, answered, answered, a choice of articles: each customer asks one.
QUESTIONS = ["Как отменить заказ?", "Сколько стоит доставка?", "Не проходит оплата картой",
             "купил стиральную машину, она сломалась"]


class BotProcess:
    """One `zabota run` process at a time, started again after each kill."""

    def __init__(
        self, mode: str, data: Path, kb_source: Path, redis_url: str, emulator: TelegramEmulator, logs: Path
    ) -> None:
        self.mode = mode
        self.port = free_port()
        self.env = {
            **os.environ,
            "ZABOTA_DATA_DIR": str(data),
            "ZABOTA_CACHE_DIR": str(MODEL_CACHE),
            "ZABOTA_LOG_LEVEL": "INFO",
            "KB_SOURCE": str(kb_source),
            "REDIS_URL": redis_url,
            "TELEGRAM_BOT_TOKEN": emulator.token,
            "TELEGRAM_API_BASE": emulator.base_url,
            "HANDOFF_WORKING_HOURS": "24/7",
            "TELEGRAM_WEBHOOK_URL": "https://bot.example.com",
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_WEBHOOK_HOST": "127.0.0.1",
            "TELEGRAM_WEBHOOK_PORT": str(self.port),
            "WEB_PORT": "0",  # the web channel on a free port: several processes on one host
        }
        self.emulator = emulator
        self.logs = logs
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        with (self.logs / f"bot-{self.starts}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", f"from bot.cli import main; raise SystemExit(main({self.arguments()!r}))"],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 240
        while not await self.ready():
            assert self.process.poll() is None, f"the bot exited with {self.process.returncode}"
            assert loop.time() < deadline, "the bot did not start"
            await asyncio.sleep(0.05)

    def arguments(self) -> list[str]:
        return ["run", "--webhook"] if self.mode == "webhook" else ["run"]

    async def ready(self) -> bool:
        if self.mode == "polling":
            return self.emulator.long_polls_waiting > 0  # it asks Telegram for updates
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
                async with session.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                    return response.status == 200
        except aiohttp.ClientError:
            return False

    def kill(self) -> None:
        assert self.process is not None and self.process.poll() is None, "the bot died by itself"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def wait_for(condition, what: str, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_killed_three_times_mid_burst_every_customer_gets_what_he_would_have(
    mode: str, tmp_path: Path, prepared: Path, clean_redis: str
) -> None:
    data = tmp_path / "data"
    shutil.copytree(prepared, data, ignore=shutil.ignore_patterns("redis"))
    kb_source = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, kb_source)
    customers = [EmulatedUser(id=8000 + n, first_name="Анна", language_code="ru") for n in range(CUSTOMERS)]
    asked = {c.id: QUESTIONS[n % len(QUESTIONS)] for n, c in enumerate(customers)}

    async with TelegramEmulator(webhook_retry_delay=0.2) as emulator:
        bot = BotProcess(mode, data, kb_source, clean_redis, emulator, tmp_path)
        try:
            await bot.start()
            if mode == "webhook":
                emulator.set_webhook_targets([f"http://127.0.0.1:{bot.port}/telegram/webhook"], secret_token=SECRET)
            expected = await control_answers(emulator)

            for customer in customers:
                await emulator.send_message(customer, asked[customer.id])

            def answered() -> int:
                return sum(1 for c in customers if emulator.bot_messages(c.id))

            # 1. As the updates have reached it: aiogram's own polling has by now told Telegram it has them all.
            if mode == "polling":
                await wait_for(lambda: not emulator.pending_updates, "the bot did not fetch the updates")
            else:
                await wait_for(lambda: len(emulator.webhook_attempts) >= len(QUESTIONS) + 5, "no webhook calls")
            bot.kill()
            assert answered() < CUSTOMERS
            # 2 and 3. Killed again while answers are going out (at a moment of its own, not just as one arrives:
            # a kill in the instant between Telegram's "sent" and its record in Redis would send that one twice).
            for share in (0.3, 0.6):
                await bot.start()
                await wait_for(lambda share=share: answered() >= share * CUSTOMERS, f"{share:.0%} not answered")
                await asyncio.sleep(0.3)
                bot.kill()
            await bot.start()
            await wait_for(
                lambda: all(len(shown(emulator, c.id)) >= len(expected[asked[c.id]]) for c in customers),
                "not every customer got his replies",
            )
            await asyncio.sleep(3.0)  # anything sent twice would be here by now
        finally:
            bot.stop()

    # A message Telegram accepted in the very instant before the kill, before its mark reached Redis, is sent
    # again after the restart (Telegram cannot be asked whether it was sent): at most a few per kill.
    assert_same_replies(emulator, customers, asked, expected, allowed_repeats=2 * 3)
    log = "".join((tmp_path / f"bot-{n}.log").read_text(errors="replace") for n in range(2, bot.starts + 1))
    assert "taking over update" in log  # what a killed process left was handled by the next one


async def test_redis_restarted_mid_burst_every_customer_gets_what_he_would_have(tmp_path: Path, prepared: Path) -> None:
    """Redis (append-only persistence) restarted while forty customers are being answered: nobody is lost."""
    data = tmp_path / "data"
    shutil.copytree(prepared, data, ignore=shutil.ignore_patterns("redis"))
    kb_source = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, kb_source)
    server = EmbeddedRedis(tmp_path / "redis")
    await server.start()
    customers = [EmulatedUser(id=8000 + n, first_name="Анна", language_code="ru") for n in range(CUSTOMERS)]
    asked = {c.id: QUESTIONS[n % len(QUESTIONS)] for n, c in enumerate(customers)}

    async with TelegramEmulator() as emulator:
        bot = BotProcess("polling", data, kb_source, server.url, emulator, tmp_path)
        try:
            await bot.start()
            expected = await control_answers(emulator)
            for customer in customers:
                await emulator.send_message(customer, asked[customer.id])

            def answered() -> int:
                return sum(1 for c in customers if emulator.bot_messages(c.id))

            await wait_for(lambda: answered() >= 0.3 * CUSTOMERS, "30% not answered")
            await server.stop()  # as `systemctl restart redis` does: SIGTERM, the data written to disk
            await asyncio.sleep(2.0)
            await server.start()
            await wait_for(
                lambda: all(len(shown(emulator, c.id)) >= len(expected[asked[c.id]]) for c in customers),
                "not every customer got his replies",
            )
            await asyncio.sleep(3.0)  # anything sent twice would be here by now
            assert bot.process is not None and bot.process.poll() is None, "the bot died with Redis"
        finally:
            bot.stop()
            await server.stop()

    # A message Telegram accepted while Redis was away cannot be marked sent: it may come again, no more.
    assert_same_replies(emulator, customers, asked, expected, allowed_repeats=6)


async def control_answers(emulator: TelegramEmulator) -> dict[str, list[str]]:
    """What each question gets when nothing goes wrong."""
    expected = {}
    for n, question in enumerate(QUESTIONS):
        control = EmulatedUser(id=7900 + n, first_name="Анна", language_code="ru")
        await emulator.send_message(control, question)
        await emulator.wait_for_bot_messages(control.id, 1, timeout=60)
        await asyncio.sleep(1.0)
        expected[question] = shown(emulator, control.id)
    assert all(expected.values())
    return expected


def assert_same_replies(
    emulator: TelegramEmulator,
    customers: list[EmulatedUser],
    asked: dict[int, str],
    expected: dict[str, list[str]],
    *,
    allowed_repeats: int,
) -> None:
    """Each customer saw what the control customer asking the same saw: nothing missing, nothing else."""
    repeats = 0
    for customer in customers:
        got = shown(emulator, customer.id)
        once = [message for n, message in enumerate(got) if n == 0 or message != got[n - 1]]
        repeats += len(got) - len(once)
        assert once == expected[asked[customer.id]], f"customer {customer.id}"
    assert repeats <= allowed_repeats, f"{repeats} messages sent twice"


def shown(emulator: TelegramEmulator, chat_id: int) -> list[str]:
    """What a customer sees: each message's text and the labels of its buttons."""
    seen = []
    for message in emulator.bot_messages(chat_id):
        markup = message.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        labels = [button["text"] if isinstance(button, dict) else button for row in rows for button in row]
        seen.append((message.text or "") + " " + json.dumps(labels, ensure_ascii=False))
    return seen

"""Several bot processes on one Redis: webhook mode behind a load balancer, and a reindex reaching every process.

Three real `zabota run --webhook` processes share a real Redis and one data folder; the emulator delivers
Telegram's webhooks to them in turn (as a load balancer would), including duplicate deliveries. Every customer
must get each reply exactly once and in order, whichever process handled which of his updates.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from bot.emulator import EmulatedUser, TelegramEmulator
from bot.factory import build_knowledge_base
from kb_index import Encoder
from tests.conftest import MODEL_CACHE, REPO, SAMPLE_KB
from tests.harness import make_settings

pytestmark = pytest.mark.slow  # starts three webhook processes

PROCESSES = 3
CUSTOMERS = 24
SECRET = "scale-out-secret"
NEW_ARTICLE = """---
id: gift-wrapping
title: Можно ли упаковать заказ в подарочную упаковку?
questions:
  - Есть ли подарочная упаковка?
  - упакуйте как подарок
  - подарочная обёртка для заказа
lang: ru
---
Да: на шаге оформления отметьте «Подарочная упаковка» (149 ₽). Чек в коробку не кладём.
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcesses:
    """``zabota run --webhook`` processes, each on its own port, started and stopped together."""

    def __init__(self, data: Path, kb_source: Path, redis_url: str, emulator: TelegramEmulator) -> None:
        self.ports = [free_port() for _ in range(PROCESSES)]
        self.processes: list[subprocess.Popen[bytes]] = []
        self.data, self.kb_source, self.redis_url, self.emulator = data, kb_source, redis_url, emulator

    def start(self, logs: Path) -> None:
        for number, port in enumerate(self.ports):
            env = {
                **os.environ,
                "ZABOTA_DATA_DIR": str(self.data),
                "ZABOTA_CACHE_DIR": str(MODEL_CACHE),
                "ZABOTA_LOG_LEVEL": "WARNING",
                "KB_SOURCE": str(self.kb_source),
                "REDIS_URL": self.redis_url,
                "TELEGRAM_BOT_TOKEN": self.emulator.token,
                "TELEGRAM_API_BASE": self.emulator.base_url,
                "TELEGRAM_WEBHOOK_URL": "https://bot.example.com",
                "TELEGRAM_WEBHOOK_SECRET": SECRET,
                "TELEGRAM_WEBHOOK_HOST": "127.0.0.1",
                "TELEGRAM_WEBHOOK_PORT": str(port),
                "WEB_PORT": "0",  # the web channel on a free port: several processes on one host
                "HANDOFF_WORKING_HOURS": "24/7",
                "OMP_NUM_THREADS": "1",
            }
            with (logs / f"bot-{number}.log").open("wb") as log:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-c", "from bot.cli import main; raise SystemExit(main(['run', '--webhook']))"],
                    cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                ))

    async def wait_healthy(self, timeout: float = 240.0) -> list[dict[str, str]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                states = []
                for port, process in zip(self.ports, self.processes, strict=True):
                    assert process.poll() is None, f"bot process on port {port} exited with {process.returncode}"
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                            states.append(await response.json() if response.status == 200 else {})
                    except aiohttp.ClientError:
                        states.append({})
                if all(states):
                    return states
                assert loop.time() < deadline, f"bot processes not healthy after {timeout} s: {states}"
                await asyncio.sleep(0.5)

    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/telegram/webhook" for port in self.ports]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
async def cluster(tmp_path: Path, prepared: Path, clean_redis: str):  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    shutil.copytree(prepared, data, ignore=shutil.ignore_patterns("redis"))
    kb_source = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, kb_source)
    async with TelegramEmulator() as emulator:
        emulator.webhook_retry_delay = 0.2
        processes = BotProcesses(data, kb_source, clean_redis, emulator)
        processes.start(tmp_path)
        try:
            await processes.wait_healthy()
            emulator.set_webhook_targets(processes.urls(), secret_token=SECRET)
            yield emulator, processes
        finally:
            processes.stop()


def replies(emulator: TelegramEmulator, chat_id: int) -> list[str]:
    return [m.text or "" for m in emulator.bot_messages(chat_id)]


async def test_three_webhook_processes_answer_every_customer_once_and_in_order(
    cluster: tuple[TelegramEmulator, BotProcesses], encoder: Encoder
) -> None:
    emulator, processes = cluster
    customers = [EmulatedUser(id=5000 + n, first_name="Анна", language_code="ru") for n in range(CUSTOMERS)]
    script = ["Здравствуйте", "Как отменить заказ?", "Спасибо"]

    async def converse(customer: EmulatedUser, duplicate: bool) -> None:
        for text in script:
            await emulator.send_message(customer, text)
            if duplicate:  # Telegram delivers again when it thinks a delivery failed
                await emulator.duplicate_last_update()

    # All customers write at once; every fourth one's updates are each delivered twice.
    await asyncio.gather(*(converse(c, n % 4 == 0) for n, c in enumerate(customers)))
    for customer in customers:
        await emulator.wait_for_bot_messages(customer.id, 3, timeout=120)
    await asyncio.sleep(2.0)  # anything duplicated would arrive by now

    expected = replies(emulator, customers[0].id)
    assert len(expected) == 3
    assert expected[0].startswith("Здравствуйте! Чем могу помочь?")
    assert "Как отменить заказ" in expected[1] and expected[1].endswith("Помог ли этот ответ?")
    assert expected[2].startswith("Пожалуйста!")
    for customer in customers:
        assert replies(emulator, customer.id) == expected, f"customer {customer.id}"

    # The load balancer really spread the updates, and every delivery was accepted.
    attempts = emulator.webhook_attempts
    assert all(a.status == 200 for a in attempts)
    per_process = Counter(a.url for a in attempts)
    assert set(per_process) == set(processes.urls())
    assert min(per_process.values()) >= CUSTOMERS * len(script) // (PROCESSES * 2)

    # A reindex by anyone (here: `zabota kb reindex` with a new article) reaches every process within seconds.
    (processes.kb_source / "ru" / "gift-wrapping.md").write_text(NEW_ARTICLE, encoding="utf-8")
    settings = make_settings(processes.data, "", "")
    summary = await asyncio.to_thread(build_knowledge_base(settings, encoder).reindex, processes.kb_source)
    assert summary.added == ["gift-wrapping/ru"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while {state["index_version"] for state in await processes.wait_healthy()} != {summary.version}:
        assert loop.time() < deadline, "not every process serves the new index version"
        await asyncio.sleep(0.5)
    askers = [EmulatedUser(id=6000 + n, first_name="Анна", language_code="ru") for n in range(PROCESSES * 2)]
    for asker in askers:
        await emulator.send_message(asker, "Есть ли подарочная упаковка?")
    for asker in askers:
        [answer] = await emulator.wait_for_bot_messages(asker.id, 1, timeout=60)
        assert "Подарочная упаковка" in (answer.text or ""), answer.text

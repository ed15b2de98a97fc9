"""Telegram's outgoing limits: a burst of customers is answered in full, paced so that Telegram refuses nothing."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiogram.methods import SendMessage

from bot.emulator import EmulatedUser, FloodLimits
from bot.telegram.sender import SharedPace, TelegramPacer
from tests.harness import Running

pytestmark = pytest.mark.slow  # waits out Telegram's pacing

# Each question and the title its answer starts with.
QUESTIONS = {
    "Как отменить заказ?": "Как отменить заказ?",
    "Сколько стоит доставка?": "Сколько стоит доставка",
    "Как вернуть товар?": "Как вернуть товар?",
    "Не проходит оплата картой": "Почему не проходит оплата картой?",
}


async def test_sixty_customers_at_once_are_all_answered_and_telegram_refuses_nothing(paced_running: Running) -> None:
    running = paced_running
    running.emulator.flood_limits = FloodLimits()  # Telegram's: 30 messages a second, 1 a second per chat
    customers = [EmulatedUser(id=9100 + n, first_name="Анна", language_code="ru") for n in range(60)]
    asked = [list(QUESTIONS)[n % len(QUESTIONS)] for n in range(len(customers))]
    for customer, question in zip(customers, asked, strict=True):
        await running.emulator.send_message(customer, question)
    answers = await asyncio.gather(
        *(running.emulator.wait_for_bot_messages(c.id, 1, timeout=90) for c in customers)
    )
    for question, [answer] in zip(asked, answers, strict=True):
        assert (answer.text or "").startswith(QUESTIONS[question]), answer.text
        assert (answer.text or "").endswith("Помог ли этот ответ?")
    assert running.emulator.flood_rejections == 0  # the bot paced itself: no 429 to wait out


async def test_two_processes_share_the_bots_thirty_messages_a_second(redis: aioredis.Redis) -> None:
    """Telegram counts the bot's messages, not each process's: two processes together stay under 30 a second."""
    sent: list[float] = []
    loop = asyncio.get_running_loop()

    async def telegram(_bot: Any, _method: Any) -> bool:
        sent.append(loop.time())
        return True

    bot = SimpleNamespace(id=123456)
    processes = [TelegramPacer(shared=SharedPace(redis, 30.0)) for _ in range(2)]
    started = loop.time()
    await asyncio.gather(*(
        pacer(telegram, bot, SendMessage(chat_id=1000 + 100 * n + i, text="ответ"))
        for n, pacer in enumerate(processes) for i in range(45)
    ))
    assert len(sent) == 90
    assert loop.time() - started >= 89 / 30 - 0.1  # one slot every 1/30 s across both (alone, each took 1.5 s)
    sent.sort()
    assert max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent) <= 31

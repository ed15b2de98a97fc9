"""An admin's /reindex while customers are asking: nobody gets a failed answer, the new version serves after."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from bot.emulator import EmulatedUser
from tests.conftest import SAMPLE_KB
from tests.harness import ADMIN_ID, Running

pytestmark = pytest.mark.slow  # rebuilds the index while customers ask

ADMIN = EmulatedUser(id=ADMIN_ID, first_name="Админ", language_code="ru")
QUESTIONS = ["Как отменить заказ?", "Сколько стоит доставка?", "Как вернуть товар?", "Не проходит оплата картой"]


async def test_customers_keep_getting_answers_while_an_admin_reindexes(running: Running, tmp_path: Path) -> None:
    source = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, source)
    article = source / "ru" / "cancel-order.md"
    article.write_text(article.read_text(encoding="utf-8").replace(
        "Как отменить заказ?", "Как отменить заказ или его часть?", 1), encoding="utf-8")
    app = running.app
    app.settings.kb = app.settings.kb.model_copy(update={"source": source})
    old_version = app.kb.index.version

    stop = asyncio.Event()
    answered: list[tuple[float, str]] = []
    clock = asyncio.get_running_loop().time

    async def keep_asking(n: int) -> None:
        turn = 0
        while not stop.is_set():
            # A new customer once the questions come round again: the same question twice is a frustrated
            # customer, whom the bot hands to a person instead of answering.
            customer = EmulatedUser(id=10_000 + 100 * n + turn // len(QUESTIONS), first_name="Анна", language_code="ru")
            question = QUESTIONS[(n + turn) % len(QUESTIONS)]
            [answer] = await running.say(customer, question, timeout=30)
            answered.append((clock(), answer.text or ""))
            assert (answer.text or "").endswith("Помог ли этот ответ?"), answer.text
            turn += 1

    askers = [asyncio.create_task(keep_asking(n)) for n in range(16)]
    await asyncio.sleep(1.0)
    started = clock()
    await running.emulator.send_message(ADMIN, "/reindex")
    await running.emulator.wait_until(
        lambda: any((m.text or "").startswith("Готово: версия") for m in running.emulator.bot_messages(ADMIN.id)), 300
    )
    done = clock()
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*askers)

    assert any(started <= at <= done for at, _ in answered), "no question was answered during the reindex"
    assert not any(text.startswith("Что-то пошло не так") for _, text in answered)
    [status] = running.emulator.bot_messages(ADMIN.id)  # the progress message, edited into the summary
    assert "изменено 1" in (status.text or "") and "добавлено 0" in (status.text or "")
    assert app.kb.index.version != old_version
    fresh = EmulatedUser(id=999, first_name="Анна", language_code="ru")
    [answer] = await running.say(fresh, "Как отменить заказ?")
    assert "Как отменить заказ или его часть?" in (answer.text or "")

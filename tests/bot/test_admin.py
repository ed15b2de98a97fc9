"""Admins' work: knowledge gaps (/gaps and `zabota kb gaps`), agents (/agents), what /reindex reports."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from bot.emulator import EmulatedUser
from tests.conftest import MODEL_CACHE, SAMPLE_KB
from tests.harness import ADMIN_ID, Running

ADMIN = EmulatedUser(id=ADMIN_ID, first_name="Админ", language_code="ru")
# Nothing in the sample knowledge base is about either.
BIKES = ["у вас можно арендовать велосипед?", "сдаёте велосипеды в аренду на выходные?", "прокат велосипедов есть?"]
JOBS = ["вы сейчас нанимаете сотрудников?", "есть ли у вас вакансии?"]


async def ask_unanswerable(running: Running) -> None:
    for n, question in enumerate(BIKES + JOBS):
        customer = EmulatedUser(id=1300 + n, first_name="Анна", language_code="ru")
        await running.emulator.send_message(customer, question)
        await running.settle(customer.id)


async def test_gaps_group_what_customers_asked_largest_first(running: Running) -> None:
    await ask_unanswerable(running)
    [reply] = await running.say(ADMIN, "/gaps")
    lines = (reply.text or "").splitlines()
    assert lines[0] == "Что база знаний не смогла ответить за 30 дн. (5 вопросов):"
    assert lines[1].startswith("1. ×3 — ") and "велосипед" in lines[1]
    assert lines[2].startswith("2. ×2 — ") and "вакансии" in lines[2]


async def test_gaps_that_a_new_article_answers_leave_the_list(running: Running, tmp_path: Path) -> None:
    await ask_unanswerable(running)
    source = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, source)
    (source / "ru" / "bike-rental.md").write_text(
        "---\nid: bike-rental\ntitle: Прокат велосипедов\nquestions: [Можно ли арендовать велосипед?, "
        "Сдаёте велосипеды в аренду?]\nlang: ru\n---\nДа: велосипед на день — 500 ₽, на выходные — 900 ₽.\n",
        encoding="utf-8",
    )
    await asyncio.to_thread(running.app.kb.reindex, source)

    [reply] = await running.say(ADMIN, "/gaps")
    lines = (reply.text or "").splitlines()
    assert lines[0] == "Что база знаний не смогла ответить за 30 дн. (5 вопросов):"
    assert lines[1].startswith("1. ×2 — ") and "вакансии" in lines[1]  # what is still missing comes first
    assert "велосипед" not in lines[1] and not lines[2]
    assert lines[3] == "На 3 из них база знаний теперь отвечает, например на «у вас можно арендовать велосипед?» — " \
        "статьёй «Прокат велосипедов»."


@pytest.mark.slow  # the command loads the model again
async def test_the_gaps_command_gives_the_same_groups_as_json(
    running: Running, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await ask_unanswerable(running)
    settings = running.app.settings
    monkeypatch.setenv("REDIS_URL", settings.redis.url)
    monkeypatch.setenv("ZABOTA_DATA_DIR", str(settings.app.data_dir))
    monkeypatch.setenv("ZABOTA_CACHE_DIR", str(MODEL_CACHE))
    assert await asyncio.to_thread(main, ["kb", "gaps", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == 5
    assert [group["count"] for group in report["groups"]] == [3, 2]
    assert sorted(report["groups"][0]["examples"]) == sorted(BIKES)


async def test_an_admin_adds_and_removes_an_agent(running: Running) -> None:
    newcomer = EmulatedUser(id=7300, first_name="Пётр", language_code="ru")
    [refused] = await running.say(newcomer, "/online")
    assert "только сотрудникам" in (refused.text or "")

    [added] = await running.say(ADMIN, "/agents add 7300")
    assert added.text == "7300 теперь сотрудник поддержки."
    [listed] = await running.say(ADMIN, "/agents")
    assert (listed.text or "").startswith("Сотрудники: 7001, 7002, 7100, 7300\n")  # supervisors are agents too
    [online] = await running.say(newcomer, "/online")
    assert "только сотрудникам" not in (online.text or "")
    customer = EmulatedUser(id=1401, first_name="Анна", language_code="ru")
    await running.say(customer, "Позовите оператора")
    await running.emulator.send_message(newcomer, "/next")
    await running.emulator.wait_until(
        lambda: any("подключился сотрудник" in (m.text or "") for m in running.emulator.bot_messages(customer.id)), 15
    )

    [removed] = await running.say(ADMIN, "/agents remove 7300")
    assert removed.text == "7300 больше не сотрудник поддержки."
    # the ticket he held goes back to the queue, and its customer is told rather than left talking to nobody
    await running.emulator.wait_until(
        lambda: any("передал ваш вопрос коллегам" in (m.text or "") for m in running.emulator.bot_messages(customer.id)), 15
    )
    assert await running.app.desk.agent_tickets(newcomer.id) == []
    before = len(running.emulator.bot_messages(newcomer.id))
    await running.emulator.send_message(newcomer, "/next")
    await running.emulator.wait_until(
        lambda: any("только сотрудникам" in (m.text or "") for m in running.emulator.bot_messages(newcomer.id)[before:]), 15
    )


async def test_a_broken_source_on_reindex_lists_every_error_and_the_old_index_keeps_answering(
    running: Running, tmp_path: Path
) -> None:
    source = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, source)
    (source / "ru" / "copy.md").write_text("---\nid: cancel-order\ntitle: Дубль\nlang: ru\n---\nТекст.\n", encoding="utf-8")
    (source / "ru" / "empty.md").write_text("---\nid: empty\ntitle: Пусто\nlang: ru\n---\n", encoding="utf-8")
    (source / "faq.csv").write_text("question,answer\nГде заказ?,\n", encoding="utf-8")
    app = running.app
    app.settings.kb = app.settings.kb.model_copy(update={"source": source})
    version = app.kb.index.version

    await running.emulator.send_message(ADMIN, "/reindex")
    await running.emulator.wait_until(
        lambda: any("База знаний не обновлена" in (m.text or "") for m in running.emulator.bot_messages(ADMIN.id)), 60
    )
    [status] = running.emulator.bot_messages(ADMIN.id)  # the progress message, edited into the report
    report = status.text or ""
    assert "• ru/copy.md:1: duplicate article id 'cancel-order' (ru): also at" in report  # file and line
    assert "• ru/empty.md:6: the answer is empty" in report
    assert "• faq.csv:2: the answer is empty" in report
    assert app.kb.index.version == version
    customer = EmulatedUser(id=1400, first_name="Анна", language_code="ru")
    [answer] = await running.say(customer, "Как отменить заказ?")
    assert "Как отменить заказ" in (answer.text or "")


async def test_the_reindex_report_names_the_articles_customers_can_ask_in_one_way_only(
    running: Running, tmp_path: Path
) -> None:
    source = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, source)  # every sample article has six phrasings
    (source / "faq.csv").write_text(
        "id,question,answer\ngift-wrap,Можно упаковать заказ как подарок?,Да: подарочная упаковка стоит 150 ₽.\n",
        encoding="utf-8",
    )
    app = running.app
    app.settings.kb = app.settings.kb.model_copy(update={"source": source})

    await running.emulator.send_message(ADMIN, "/reindex")
    await running.emulator.wait_until(
        lambda: any("Что поможет" in (m.text or "") for m in running.emulator.bot_messages(ADMIN.id)), 120
    )
    [status] = running.emulator.bot_messages(ADMIN.id)
    report = status.text or ""
    assert "Что бот будет делать с этой базой" in report
    assert "у 1 из 46 статей только одна формулировка вопроса — заголовок (gift-wrap)" in report


async def test_an_admin_adds_a_supervisor_who_then_sees_stats(running: Running) -> None:
    lead = EmulatedUser(id=7301, first_name="Марк", language_code="ru")
    [refused] = await running.say(lead, "/stats")
    assert "только сотрудникам" in (refused.text or "")
    [added] = await running.say(ADMIN, "/agents add-supervisor 7301")
    assert (added.text or "").startswith("7301 теперь руководитель поддержки")
    [listed] = await running.say(ADMIN, "/agents")
    assert "Руководители: 7100, 7301\n" in (listed.text or "")
    [stats] = await running.say(lead, "/stats")
    assert stats.text == "За 30 дн. опросов не было."
    assert 7301 in await running.app.workspace.directory.supervisors()  # low-score and long-wait alerts reach him
    [removed] = await running.say(ADMIN, "/agents remove-supervisor 7301")
    assert removed.text == "7301 больше не руководитель поддержки."

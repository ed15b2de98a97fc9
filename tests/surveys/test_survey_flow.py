"""Surveys with the real bot: each ending triggers one survey, edited in place; low scores reach supervisors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.emulator import EmulatedUser
from kb_index import Encoder
from tests.harness import ADMIN_ID, AGENT_ID, SUPERVISOR_ID, Running, labels, running_app

AGENT = EmulatedUser(id=AGENT_ID, first_name="Ольга", language_code="ru")
SUPERVISOR = EmulatedUser(id=SUPERVISOR_ID, first_name="Марина", language_code="ru")
ADMIN = EmulatedUser(id=ADMIN_ID, first_name="Админ", language_code="ru")


async def surveys_sent(running: Running, chat_id: int) -> list[str]:
    return [m.text or "" for m in running.emulator.bot_messages(chat_id) if (m.text or "").startswith("Насколько")]


async def test_a_helpful_answer_gets_effort_then_satisfaction_edited_in_place(running: Running) -> None:
    customer = EmulatedUser(id=601, first_name="Анна", language_code="ru")
    [ask] = await running.say(customer, "Как отменить заказ?")
    thanks, survey = await running.tap(customer, ask, "👍 Да, помог", count=2)
    assert thanks.text is not None and "рада была помочь" in thanks.text
    assert survey.text is not None and survey.text.startswith("Насколько легко было решить ваш вопрос?")
    assert labels(survey) == ["1", "2", "3", "4", "5"]

    await running.emulator.press_button(customer, survey, "5")
    edited = running.emulator.bot_messages(customer.id)[-1]
    await running.emulator.wait_until(lambda: "довольны ответом" in (running.emulator.bot_messages(customer.id)[-1].text or ""), 15)
    edited = running.emulator.bot_messages(customer.id)[-1]
    assert edited.message_id == survey.message_id  # the same message, edited
    assert edited.text is not None and edited.text.startswith("Спасибо!")
    await running.emulator.press_button(customer, edited, "4")
    await running.emulator.wait_until(lambda: running.emulator.bot_messages(customer.id)[-1].text == "Спасибо за оценку! Это помогает нам становиться лучше.", 15)

    stored = (await running.app.surveys.surveys(0))[0]
    assert stored.answers == {"ces": 5, "csat": 4} and stored.trigger.value == "bot_helped"
    assert stored.articles == ["cancel-order"] and stored.agent_name == ""

    # A second helpful answer in the same week: no second survey (survey fatigue).
    [ask2] = await running.say(customer, "Сколько стоит доставка?")
    [only_thanks] = await running.tap(customer, ask2, "👍 Да, помог")
    assert await running.settle(customer.id, quiet=1.5) == []
    assert only_thanks.text is not None and "рада была помочь" in only_thanks.text


async def test_a_low_score_reaches_supervisors_with_the_conversation_and_the_comment(running: Running) -> None:
    customer = EmulatedUser(id=602, first_name="Борис", language_code="ru")
    running.emulator.register_user(SUPERVISOR)  # the supervisor has started the bot before
    await running.say(AGENT, "/online")
    await running.emulator.send_message(customer, "Не пришёл возврат денег")
    await running.settle(customer.id)
    await running.say(customer, "позовите оператора")
    await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    await running.say(AGENT, "/next")
    await running.emulator.send_message(AGENT, "Проверю и вернусь.")
    await running.say(AGENT, "/close unresolved")
    messages = await running.settle(customer.id)
    survey = next(m for m in messages if (m.text or "").startswith("Насколько вы довольны помощью"))

    await running.emulator.press_button(customer, survey, "1")
    [alert] = await running.emulator.wait_for_bot_messages(SUPERVISOR.id, 1, timeout=15)
    assert alert.text is not None and alert.text.startswith("⚠️ Низкая оценка (T")
    assert "CSAT 1" in alert.text and "Клиент: Борис (ru) · Ольга" in alert.text
    assert "Клиент: Не пришёл возврат денег" in alert.text
    assert "Сотрудник: Проверю и вернусь." in alert.text

    await running.emulator.wait_until(lambda: "Насколько легко" in (running.emulator.bot_messages(customer.id)[-1].text or ""), 15)
    await running.emulator.press_button(customer, running.emulator.bot_messages(customer.id)[-1], "2")
    await running.emulator.wait_until(lambda: "Расскажете, что пошло не так?" in (running.emulator.bot_messages(customer.id)[-1].text or ""), 15)
    offer = running.emulator.bot_messages(customer.id)[-1]
    assert labels(offer) == ["✍️ Написать комментарий", "Пропустить"]
    await running.emulator.press_button(customer, offer, "✍️ Написать комментарий")
    await running.emulator.wait_until(lambda: (running.emulator.bot_messages(customer.id)[-1].text or "").startswith("Напишите, пожалуйста"), 15)
    [thanks] = await running.say(customer, "Деньги так и не вернули, две недели жду")
    assert thanks.text == "Спасибо, передали руководителю поддержки."
    [comment] = await running.emulator.wait_for_bot_messages(SUPERVISOR.id, 1, timeout=15)
    assert comment.text is not None and "Деньги так и не вернули, две недели жду" in comment.text
    assert running.app.survey_alerts.alerts_sent == 1  # the CES of 2 did not alert a second time
    stored = (await running.app.surveys.surveys(0))[0]
    assert stored.answers == {"csat": 1, "ces": 2} and stored.comment.startswith("Деньги так и не вернули")


async def test_a_forged_or_replayed_tap_changes_nothing(running: Running) -> None:
    customer = EmulatedUser(id=603, first_name="Вера", language_code="ru")
    intruder = EmulatedUser(id=604, first_name="Чужой", language_code="ru")
    [ask] = await running.say(customer, "Как отменить заказ?")
    _, survey = await running.tap(customer, ask, "👍 Да, помог", count=2)
    stored = (await running.app.surveys.surveys(0))[0]
    data = f"s:{stored.id}:ces:1"

    await running.say(intruder, "привет")
    other_message = running.emulator.bot_messages(intruder.id)[-1]
    query = await running.emulator.press_button_data(intruder, other_message, data)
    assert (await running.emulator.wait_for_callback_answer(query["id"])).text == "Этот опрос не для вас."

    await running.emulator.press_button(customer, survey, "4")
    replay = await running.emulator.press_button_data(customer, survey, f"s:{stored.id}:ces:1")
    assert (await running.emulator.wait_for_callback_answer(replay["id"])).text == "Этот ответ уже учтён."
    assert (await running.app.surveys.get(stored.id)).answers == {"ces": 4}  # type: ignore[union-attr]


@pytest.mark.slow  # waits for the silence timer
async def test_silence_after_an_answer_is_surveyed_once_but_not_during_a_hand_off(
    tmp_path: Path, prepared: Path, encoder: Encoder, clean_redis: str
) -> None:
    async with running_app(tmp_path, prepared, encoder, clean_redis,
                           surveys={"assumed_resolved_minutes": 0.01}) as running:
        quiet = EmulatedUser(id=605, first_name="Глеб", language_code="ru")
        waiting = EmulatedUser(id=606, first_name="Дина", language_code="ru")
        await running.say(quiet, "Как отменить заказ?")
        await running.say(waiting, "Сколько стоит доставка?")
        await running.say(waiting, "позовите оператора")  # a ticket is open: no survey now
        await asyncio.sleep(1.0)
        assert await running.app.survey_triggers.survey_silent_answers() == 1
        [survey] = await running.emulator.wait_for_bot_messages(quiet.id, 1, timeout=15)
        assert survey.text is not None and survey.text.startswith("Насколько легко было решить ваш вопрос?")
        assert await running.app.survey_triggers.survey_silent_answers() == 0  # once
        assert await running.settle(waiting.id, quiet=1.0) == []


@pytest.mark.slow  # waits for the survey to expire
async def test_a_survey_tap_after_expiry_is_told_the_survey_closed(
    tmp_path: Path, prepared: Path, encoder: Encoder, clean_redis: str
) -> None:
    async with running_app(tmp_path, prepared, encoder, clean_redis, surveys={"expiry_hours": 0.0003}) as running:
        customer = EmulatedUser(id=607, first_name="Ева", language_code="ru")
        [ask] = await running.say(customer, "Как отменить заказ?")
        _, survey = await running.tap(customer, ask, "👍 Да, помог", count=2)
        await asyncio.sleep(1.5)
        query = await running.emulator.press_button(customer, survey, "5")
        assert (await running.emulator.wait_for_callback_answer(query["id"])).text == "Этот опрос уже закрыт."


async def test_a_customer_who_blocked_the_bot_gets_no_survey(running: Running) -> None:
    customer = EmulatedUser(id=608, first_name="Жанна", language_code="ru")
    await running.talking_with(customer, AGENT)
    await running.emulator.block_bot(customer)
    await running.say(AGENT, "/close resolved")
    await running.emulator.wait_until(lambda: any(r.status == 403 for r in running.emulator.requests), 15)
    await asyncio.sleep(1.0)
    assert await running.app.surveys.surveys(0) == []  # withdrawn, not retried
    sends = [r for r in running.emulator.requests if r.params.get("chat_id") in (customer.id, str(customer.id))
             and r.status == 403]
    assert len(sends) <= 2  # the closing notice and the survey: each tried once


async def test_stats_for_admins_as_a_chart_and_refused_to_customers(running: Running) -> None:
    customer = EmulatedUser(id=609, first_name="Зоя", language_code="ru")
    [ask] = await running.say(customer, "Как отменить заказ?")
    _, survey = await running.tap(customer, ask, "👍 Да, помог", count=2)
    await running.emulator.press_button(customer, survey, "5")
    await asyncio.sleep(0.5)
    [chart] = await running.say(ADMIN, "/stats 30")
    assert "photo" in chart.message
    assert chart.text is not None and chart.text.startswith("Опросы за 30 дн.: CSAT -, CES 5.00, ответили 100% (отправлено 1)")
    [refusal] = await running.say(customer, "/stats")
    assert refusal.text == "Эта команда доступна только сотрудникам поддержки."


@pytest.mark.parametrize("command", ["/stats", "/agents", "/reindex", "/gaps"])
async def test_an_agent_is_not_an_admin(running: Running, command: str) -> None:
    [reply] = await running.say(AGENT, command)
    assert reply.text is not None and reply.text.startswith("Команды сотрудника")  # his own help, nothing else

"""action_ask_csat / action_ask_ces / action_record_survey_answer: Rasa customers rate the help like Telegram's do."""

from __future__ import annotations

import time

from rasa_sdk.executor import ActionExecutor

from bot.emulator import EmulatedUser
from surveys import build_report, export_csv
from tests.harness import SUPERVISOR_ID, Running
from tests.rasa.conftest import RasaConversation, run_action, slots_set, texts

SUPERVISOR = EmulatedUser(id=SUPERVISOR_ID, first_name="Марина", language_code="ru")


def button(answer: dict, title: str) -> dict[str, str]:
    [message] = [r for r in answer["responses"] if r["buttons"]]
    return next(b for b in message["buttons"] if b["title"] == title)


async def test_a_helped_customer_rates_the_answer_and_it_counts_in_the_reports(
    running: Running, executor: ActionExecutor
) -> None:
    conversation = RasaConversation("web-csat")
    conversation.customer_says("Как отменить заказ?")
    await run_action(executor, conversation, "action_kb_answer")
    conversation.customer_says("Спасибо, помогло", intent="thanks")

    asked = await run_action(executor, conversation, "action_ask_csat")

    [question] = asked["responses"]
    assert question["text"] == "Насколько вы довольны ответом?\n1 — совсем недоволен, 5 — очень доволен"
    assert [b["title"] for b in question["buttons"]] == ["1", "2", "3", "4", "5"]
    survey_id = slots_set(asked)["zabota_survey_id"]
    assert button(asked, "4")["payload"] == f'/zabota_survey_answer{{"zabota_survey_answer": "{survey_id}:csat:4"}}'
    assert slots_set(asked)["zabota_survey_question"] == "csat"

    conversation.taps(button(asked, "4"))
    first = await run_action(executor, conversation, "action_record_survey_answer")
    assert texts(first) == ["Спасибо!\n\nНасколько легко было решить ваш вопрос?\n1 — очень сложно, 5 — очень легко"]
    assert slots_set(first)["zabota_survey_question"] == "ces"

    conversation.taps(button(first, "5"))
    second = await run_action(executor, conversation, "action_record_survey_answer")
    assert texts(second) == ["Спасибо за оценку! Это помогает нам становиться лучше."]
    assert slots_set(second)["zabota_survey_question"] is None

    conversation.taps(button(first, "1"))  # a second tap on the same question changes nothing
    again = await run_action(executor, conversation, "action_record_survey_answer")
    assert texts(again) == ["Этот ответ уже учтён."]

    [stored] = await running.app.surveys.surveys(0)
    assert stored.answers == {"csat": 4, "ces": 5}
    assert stored.channel == "rasa" and stored.trigger.value == "bot_helped" and stored.lang == "ru"
    assert stored.articles == ["cancel-order"] and stored.customer_name == "web-csat"
    report = build_report([stored], 0, time.time())
    assert report.overall.csat == 1.0 and report.overall.ces == 5.0 and report.overall.response_rate == 1.0
    assert report.by_article["cancel-order"].sent == 1
    [header, row] = export_csv([stored]).splitlines()
    assert dict(zip(header.split(","), row.split(","), strict=True))["channel"] == "rasa"

    # The same session is not surveyed twice.
    conversation.customer_says("А как вернуть товар?")
    await run_action(executor, conversation, "action_kb_answer")
    assert (await run_action(executor, conversation, "action_ask_ces"))["responses"] == []


async def test_a_low_score_typed_in_reaches_supervisors_and_the_next_message_is_its_comment(
    running: Running, executor: ActionExecutor
) -> None:
    running.emulator.register_user(SUPERVISOR)  # the supervisor has started the bot before
    conversation = RasaConversation("web-low", metadata={"name": "Борис"})
    conversation.customer_says("Как отменить заказ?")
    await run_action(executor, conversation, "action_kb_answer")

    asked = await run_action(executor, conversation, "action_ask_ces")
    assert texts(asked) == ["Насколько легко было решить ваш вопрос?\n1 — очень сложно, 5 — очень легко"]
    conversation.customer_says("2", intent="nlu_fallback")  # typed, not tapped
    first = await run_action(executor, conversation, "action_record_survey_answer")
    assert texts(first)[0].startswith("Спасибо!\n\nНасколько вы довольны ответом?")
    conversation.customer_says("1", intent="nlu_fallback")
    low = await run_action(executor, conversation, "action_record_survey_answer")
    assert texts(low) == [
        "Спасибо за честную оценку. Жаль, что не всё прошло хорошо. Расскажете, что пошло не так? "
        "Руководитель поддержки прочитает."
    ]

    [alert] = await running.emulator.wait_for_bot_messages(SUPERVISOR.id, 1, timeout=15)
    assert alert.text is not None and alert.text.startswith("⚠️ Низкая оценка")
    assert "CES 2" in alert.text and "Борис (ru)" in alert.text

    conversation.taps(button(low, "✍️ Написать комментарий"))
    prompt = await run_action(executor, conversation, "action_record_survey_answer")
    assert texts(prompt) == ["Напишите, пожалуйста, что пошло не так — одним сообщением."]
    conversation.customer_says("Кнопки отмены в приложении нет, искала полчаса")
    thanks = await run_action(executor, conversation, "action_kb_answer")  # the assistant's usual fallback
    assert texts(thanks) == ["Спасибо, передали руководителю поддержки."]

    [comment] = await running.emulator.wait_for_bot_messages(SUPERVISOR.id, 1, timeout=15)
    assert comment.text == "💬 Комментарий к оценке от Борис: Кнопки отмены в приложении нет, искала полчаса"
    [stored] = await running.app.surveys.surveys(0)
    assert stored.answers == {"ces": 2, "csat": 1} and stored.comment == "Кнопки отмены в приложении нет, искала полчаса"


async def test_the_survey_speaks_the_customers_language(executor: ActionExecutor) -> None:
    conversation = RasaConversation("web-en")
    conversation.customer_says("How do I cancel my order?")
    await run_action(executor, conversation, "action_kb_answer")
    asked = await run_action(executor, conversation, "action_ask_csat")
    assert texts(asked) == ["How satisfied are you with the answer?\n1 — very dissatisfied, 5 — very satisfied"]

"""action_kb_answer: a Rasa assistant answers from Zabota's knowledge base, in the customer's language."""

from __future__ import annotations

import pytest
from rasa_sdk.executor import ActionExecutor

from tests.harness import Running
from tests.rasa.conftest import RasaConversation, run_action, slots_set, texts


async def test_a_question_is_answered_with_the_article_and_the_slots_tell_the_story(executor: ActionExecutor) -> None:
    conversation = RasaConversation("web-4411")
    conversation.customer_says("Привет", intent="greet")
    conversation.bot_says("Здравствуйте! Чем помочь?")
    conversation.customer_says("Как отменить заказ?")

    answer = await run_action(executor, conversation, "action_kb_answer")

    [reply] = texts(answer)
    assert reply.startswith("Как отменить заказ?\n\n")
    assert "Отменить заказ бесплатно можно, пока" in reply  # the article's answer, as written in the knowledge base
    slots = slots_set(answer)
    assert slots["zabota_decision"] == "answer"
    assert slots["zabota_article_id"] == "cancel-order"
    assert slots["zabota_confidence"] >= 0.5  # the default level to answer
    assert slots["zabota_lang"] == "ru"


@pytest.mark.parametrize(
    ("question", "lang", "title"),
    [
        ("Як скасувати замовлення?", "uk", "Як скасувати замовлення?"),
        ("How do I cancel my order?", "en", "How do I cancel an order?"),
    ],
)
async def test_the_answer_is_in_the_language_the_customer_writes(
    executor: ActionExecutor, question: str, lang: str, title: str
) -> None:
    conversation = RasaConversation(f"web-{lang}")
    conversation.customer_says(question)
    answer = await run_action(executor, conversation, "action_kb_answer")
    assert texts(answer)[0].startswith(title + "\n\n")
    assert slots_set(answer)["zabota_lang"] == lang


async def test_an_unsure_answer_offers_articles_as_buttons_and_a_tap_answers_with_that_article(
    executor: ActionExecutor,
) -> None:
    conversation = RasaConversation("web-clarify")
    conversation.customer_says("купил стиральную машину, она сломалась")

    offer = await run_action(executor, conversation, "action_kb_answer")

    [message] = offer["responses"]
    assert message["text"] == "Уточните, пожалуйста, что вы имели в виду:"
    titles = [b["title"] for b in message["buttons"]]
    assert titles[-1] == "🙋 Позвать сотрудника" and message["buttons"][-1]["payload"] == "/zabota_handoff"
    assert "Как сдать товар в гарантийный ремонт?" in titles
    assert slots_set(offer)["zabota_decision"] == "clarify"
    assert 0.35 <= slots_set(offer)["zabota_confidence"] < 0.5  # the default levels: offer a choice, answer

    repair = next(b for b in message["buttons"] if b["title"] == "Как сдать товар в гарантийный ремонт?")
    conversation.taps(repair)
    answer = await run_action(executor, conversation, "action_kb_answer")
    assert texts(answer)[0].startswith("Как сдать товар в гарантийный ремонт?\n\n")
    assert slots_set(answer) == {
        "zabota_decision": "answer", "zabota_confidence": 1.0, "zabota_article_id": "warranty-repair", "zabota_lang": "ru"
    }


async def test_when_nothing_fits_the_assistant_says_nothing_and_the_question_is_a_knowledge_gap(
    running: Running, executor: ActionExecutor
) -> None:
    conversation = RasaConversation("web-gap")
    conversation.customer_says("Какая погода будет завтра в Сочи?")

    answer = await run_action(executor, conversation, "action_kb_answer")

    assert answer["responses"] == []  # the story or flow decides: hand off, or its own fallback
    slots = slots_set(answer)
    assert slots["zabota_decision"] == "handoff" and slots["zabota_article_id"] is None
    gaps = await running.app.gap_log.since(1)
    assert [g.question for g in gaps] == ["Какая погода будет завтра в Сочи?"]  # the admins' /gaps lists it


async def test_a_button_for_an_article_that_is_gone_is_answered_by_its_title(executor: ActionExecutor) -> None:
    conversation = RasaConversation("web-stale")
    conversation.customer_says("купил стиральную машину, она сломалась")
    await run_action(executor, conversation, "action_kb_answer")
    stale = {"title": "Как отменить заказ?", "payload": '/zabota_kb_article{"zabota_article": "cancel-order-2019"}'}
    offer = next(event for event in reversed(conversation.events) if event["event"] == "bot")
    offer["data"]["buttons"].append(stale)  # offered before a reindex that removed that article

    conversation.taps(stale)
    answer = await run_action(executor, conversation, "action_kb_answer")

    assert texts(answer)[0].startswith("Как отменить заказ?\n\n")
    assert slots_set(answer)["zabota_article_id"] == "cancel-order"

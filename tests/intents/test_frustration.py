"""Noticing a frustrated customer: in the message itself, and in how the conversation has gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intents import ConversationTurn, assess, conversation_signals, message_signals

NOON = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def codes(text: str) -> list[str]:
    return [signal.code for signal in message_signals(text)]


@pytest.mark.parametrize(
    "text",
    [
        "Здравствуйте, где мой заказ?",
        "Добрий день! Коли приїде кур'єр?",
        "Hi, how do I return an item?",
        "Серьёзно?! Опять перенос?",  # one "?!" is emphasis, not frustration
        "Заказ 123456, NFC и USB не работают",
        "I bought a dumbbell set and a compass",
        "В тупике возле дома нет пункта выдачи",
        "ок",
    ],
)
def test_a_calm_message_shows_no_frustration(text: str) -> None:
    assert message_signals(text) == []
    assert assess(text) == assess(text, [])
    assert not assess(text).frustrated


@pytest.mark.parametrize("text", ["ГДЕ МОЙ ЗАКАЗ", "ДЕ МОЄ ЗАМОВЛЕННЯ?", "WHERE IS MY ORDER"])
def test_caps_lock_is_noticed(text: str) -> None:
    assert codes(text) == ["caps_lock"]


def test_a_short_shout_is_not_caps_lock() -> None:
    assert codes("ОК") == []
    assert codes("НЕТ!") == []


@pytest.mark.parametrize("text", ["где мой заказ!!!", "Ну и где???", "Why?!?!", "Коли вже!!?"])
def test_repeated_punctuation_is_noticed(text: str) -> None:
    assert codes(text) == ["repeated_punctuation"]


def test_a_double_mark_is_ordinary_emphasis() -> None:
    assert codes("Коли вже!!") == []


@pytest.mark.parametrize(
    "text",
    [
        "ты идиот",
        "тупой бот",
        "вы что, дебилы?",
        "бесполезный бот",
        "ти ідіот",
        "тупий бот",
        "you are stupid",
        "useless bot",
        "what an idiot",
        "ты идиooот",  # stretched, with Latin "o"s
    ],
)
def test_insults_are_noticed(text: str) -> None:
    assert codes(text) == ["insult"]


def test_all_signals_of_a_message_are_reported() -> None:
    state = assess("ТУПОЙ БОТ, ГДЕ ЗАКАЗ???")

    assert state.frustrated
    assert state.reasons == ("caps_lock", "repeated_punctuation", "insult")


def test_asking_the_same_question_again_is_noticed() -> None:
    history = [
        ConversationTurn("customer", "Здравствуйте, где мой заказ 1234?", at=NOON),
        ConversationTurn("bot", "Заказ можно отследить в личном кабинете.", at=NOON),
    ]

    state = assess("где мой заказ 1234", history, now=NOON + timedelta(minutes=3))

    assert state == assess("где мой заказ 1234", history)
    assert state.reasons == ("repeated_question",)


def test_a_near_duplicate_counts_and_a_new_question_does_not() -> None:
    earlier = ConversationTurn("customer", "почему не приходит код для входа в кабинет")

    assert assess("почему не приходит код для входа в личный кабинет", [earlier]).reasons == ("repeated_question",)
    assert assess("как поменять адрес доставки", [earlier]).reasons == ()


def test_short_replies_repeat_naturally() -> None:
    history = [ConversationTurn("customer", "да"), ConversationTurn("bot", "Оформить возврат?")]

    assert assess("да", history).reasons == ()


def test_only_recent_customer_messages_are_compared() -> None:
    history = [ConversationTurn("customer", "где мой заказ 1234", at=NOON)]
    history += [ConversationTurn("customer", f"вопрос номер {n} про оплату", at=NOON) for n in range(5)]
    yesterday = [ConversationTurn("customer", "где мой заказ 1234", at=NOON - timedelta(days=1))]

    assert assess("где мой заказ 1234", history, now=NOON).reasons == ()  # beyond the last five messages
    assert assess("где мой заказ 1234", yesterday, now=NOON).reasons == ()  # a day later is a new conversation


def test_two_unhelpful_answers_in_a_row_are_noticed() -> None:
    history = [
        ConversationTurn("customer", "не проходит оплата"),
        ConversationTurn("bot", "Проверьте лимиты карты.", feedback="not_helpful"),
        ConversationTurn("customer", "лимиты в порядке, оплата всё равно не проходит"),
        ConversationTurn("bot", "Попробуйте другую карту.", feedback="not_helpful"),
    ]

    assert [signal.code for signal in conversation_signals(history)] == ["negative_feedback_twice"]
    assert assess("и что теперь делать", history).reasons == ("negative_feedback_twice",)


def test_a_helpful_answer_in_between_breaks_the_run() -> None:
    history = [
        ConversationTurn("bot", "Ответ 1", feedback="not_helpful"),
        ConversationTurn("bot", "Ответ 2", feedback="helpful"),
        ConversationTurn("bot", "Ответ 3", feedback="not_helpful"),
        ConversationTurn("bot", "Ответ 4"),  # not rated yet
    ]

    assert conversation_signals(history) == []

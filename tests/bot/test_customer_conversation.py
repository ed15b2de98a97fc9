"""A customer's conversation with the real bot: the dispatcher polls the Bot API emulator, Redis is real,
the encoder and the sample knowledge base are the shipped ones. Assertions are on what the customer sees."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.core import keys
from bot.emulator import EmulatedUser
from kb_index import Encoder
from tests.harness import Running, labels, running_app

RU = EmulatedUser(id=501, first_name="Анна", language_code="ru")
UK = EmulatedUser(id=502, first_name="Олена", language_code="uk")
EN = EmulatedUser(id=503, first_name="John", language_code="en")


async def conversation_log(running: Running, chat_id: int) -> list[dict[str, object]]:
    raw = await running.app.redis.lrange(keys.conversation_log(chat_id), 0, -1)
    return [json.loads(item) for item in raw]


@pytest.mark.parametrize(
    ("user", "greeting", "menu"),
    [(RU, "Здравствуйте, Анна!", "🙋 Позвать сотрудника"), (UK, "Вітаю, Олена!", "🙋 Покликати співробітника"),
     (EN, "Hello, John!", "🙋 Talk to a person")],
)
async def test_start_greets_in_the_customers_language_and_shows_the_way_to_a_person(
    running: Running, user: EmulatedUser, greeting: str, menu: str
) -> None:
    [reply] = await running.say(user, "/start")
    assert reply.text is not None and reply.text.startswith(greeting)
    keyboard = running.emulator.current_keyboard(user.id)
    assert keyboard is not None
    assert menu in json.dumps(keyboard, ensure_ascii=False)


async def test_a_question_gets_the_whole_article_and_did_this_help(running: Running) -> None:
    [answer] = await running.say(RU, "Здравствуйте! Как отменить заказ?")  # one message: the answer and the question
    assert answer.text is not None
    assert answer.text.startswith("Как отменить заказ?")
    assert "Передан в доставку" in answer.text  # the body of the article, not a summary
    assert answer.parse_mode == "HTML"
    assert answer.text.endswith("\n\nПомог ли этот ответ?")
    assert labels(answer) == ["👍 Да, помог", "👎 Нет", "🙋 Позвать сотрудника"]

    [thanks] = await running.tap(RU, answer, "👍 Да, помог")
    assert labels(running.emulator.bot_messages(RU.id)[0]) == []  # the buttons are gone once tapped
    assert thanks.text is not None and "рада была помочь" in thanks.text
    log = await conversation_log(running, RU.id)
    decision = next(t for t in log if t["kind"] == "decision")
    assert decision["text"] == "answer"
    assert decision["data"]["matches"][0]["article_id"] == "cancel-order"  # type: ignore[index]
    assert any(t["kind"] == "feedback" and t["text"] == "helpful" for t in log)


async def test_typing_shows_only_while_a_slow_answer_is_prepared(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.telegram import replies

    [answer] = await running.say(RU, "Как отменить заказ?")
    assert answer.text is not None and answer.text.startswith("Как отменить заказ?")
    assert running.emulator.chat_actions == []  # answered at once: no "typing…" first, no request spent on it

    kb = running.app.kb
    search = kb.search_async

    async def slow_search(*args: object, **kwargs: object) -> object:
        await asyncio.sleep(0.6)
        return await search(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(replies, "TYPING_AFTER", 0.1)
    monkeypatch.setattr(kb, "search_async", slow_search)
    [answer] = await running.say(RU, "Сколько стоит доставка?")
    assert answer.text is not None and answer.text.startswith("Сколько стоит доставка")
    assert [(a.chat_id, a.action) for a in running.emulator.chat_actions] == [(RU.id, "typing")]


async def test_ukrainian_customer_reads_the_ukrainian_version(running: Running) -> None:
    [answer] = await running.say(UK, "Як повернути товар, який не підійшов?")
    log = await conversation_log(running, UK.id)
    article_id = next(t for t in log if t["kind"] == "decision")["data"]["matches"][0]["article_id"]  # type: ignore[index]
    assert article_id in ("return-policy", "how-to-return")
    assert answer.text is not None and answer.text.startswith(running.app.kb.article(article_id, "uk").title)
    assert answer.text.endswith("Чи допомогла ця відповідь?")


async def test_no_offers_the_next_articles_then_a_second_no_goes_to_a_person(running: Running) -> None:
    [ask] = await running.say(RU, "как отследить где сейчас моя посылка")
    [alternatives] = await running.tap(RU, ask, "👎 Нет")
    assert alternatives.text == "Жаль, что не помогло. Возможно, подойдёт одна из этих статей?"
    options = labels(alternatives)
    assert options[-2:] == ["Ничего из этого", "🙋 Позвать сотрудника"]
    assert 1 <= len(options) - 2 <= 3

    [handoff] = await running.tap(RU, alternatives, "Ничего из этого")
    assert handoff.text is not None and "Передаю ваш вопрос сотруднику" in handoff.text
    assert "1-й в очереди" in handoff.text
    ticket = await running.app.desk.open_ticket_of(RU.id)
    assert ticket is not None and ticket.reason.value == "negative_feedback"


async def test_a_vague_question_offers_a_choice_and_the_choice_is_answered(running: Running) -> None:
    [clarify] = await running.say(RU, "посылка")
    assert clarify.text == "Уточните, пожалуйста, что вы имели в виду:"
    options = labels(clarify)
    assert 2 <= len(options) <= 5 and options[-2:] == ["Ничего из этого", "🙋 Позвать сотрудника"]
    chosen = options[0]
    [answer] = await running.tap(RU, clarify, chosen)
    assert answer.text is not None and answer.text.startswith(chosen.rstrip("…"))
    assert answer.text.endswith("Помог ли этот ответ?")


@pytest.mark.parametrize(
    ("user", "words", "expected"),
    [
        (RU, "Позовите живого человека, пожалуйста", "Передаю ваш вопрос сотруднику"),
        (UK, "Покличте оператора", "Передаю ваше запитання співробітнику"),
        (EN, "I want to talk to a real person", "I'm passing your question to a support agent"),
    ],
)
async def test_asking_for_a_person_in_words_hands_off(running: Running, user: EmulatedUser, words: str, expected: str) -> None:
    [reply] = await running.say(user, words)
    assert reply.text is not None and reply.text.startswith(expected)
    ticket = await running.app.desk.open_ticket_of(user.id)
    assert ticket is not None and ticket.reason.value == "asked_for_person"


async def test_the_menu_button_and_the_command_hand_off_too(running: Running) -> None:
    [reply] = await running.say(EN, "🙋 Talk to a person")
    assert reply.text is not None and reply.text.startswith("I'm passing your question")
    [again] = await running.say(EN, "/human")
    assert again.text is not None  # relayed to the waiting ticket: the customer hears where he stands
    assert "already in the queue" in again.text


async def test_greetings_and_thanks_get_short_replies_and_no_search(running: Running) -> None:
    [hello] = await running.say(RU, "Привет!")
    [thanks] = await running.say(RU, "спасибо")
    assert hello.text == "Здравствуйте! Чем могу помочь? Напишите вопрос своими словами."
    assert thanks.text == "Пожалуйста! Если появятся ещё вопросы — пишите."
    assert not [t for t in await conversation_log(running, RU.id) if t["kind"] == "decision"]


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        ("send_photo", "фото получил"),
        ("send_voice", "Голосовые сообщения"),
        ("send_sticker", "Напишите, пожалуйста, ваш вопрос текстом"),
        ("send_location", "геопозицию получил"),
    ],
)
async def test_media_gets_a_polite_reply_in_the_customers_language(running: Running, send: str, expected: str) -> None:
    method = getattr(running.emulator, send)
    if send == "send_location":
        await method(RU, 55.75, 37.61)
    else:
        await method(RU)
    [reply] = await running.emulator.wait_for_bot_messages(RU.id, 1, timeout=15)
    assert reply.text is not None and expected in reply.text
    assert labels(reply) == ["🙋 Позвать сотрудника"]


async def test_an_edited_question_is_answered_again(running: Running) -> None:
    message = await running.emulator.send_message(EN, "hello")
    await running.emulator.wait_for_bot_messages(EN.id, 1, timeout=15)
    await running.emulator.edit_message(EN, message["message_id"], "How do I delete my account?")
    [answer] = await running.emulator.wait_for_bot_messages(EN.id, 1, timeout=15)
    assert answer.text is not None and answer.text.startswith("How do I delete my account?")


async def test_a_duplicate_update_is_processed_once(running: Running) -> None:
    await running.say(RU, "Сколько стоит доставка?")
    await running.emulator.duplicate_last_update()
    assert await running.settle(RU.id, quiet=1.0) == []
    assert running.app.inbox.duplicates == 1  # Telegram delivered it again: recognised, not stored twice
    log = await conversation_log(running, RU.id)
    assert [t["text"] for t in log if t["role"] == "customer"] == ["Сколько стоит доставка?"]


@pytest.mark.slow  # waits out the flood
async def test_a_flood_gets_one_moment_once_and_is_still_logged(running: Running) -> None:
    limit = running.app.settings.dialog.flood_limit
    for number in range(limit + 5):
        await running.emulator.send_message(EN, f"hello {number}")
    received = await running.settle(EN.id, quiet=3.0)
    texts = [m.text for m in received]
    assert texts.count("One moment, I'm reading your messages…") == 1
    assert len(received) == limit + 1
    log = await conversation_log(running, EN.id)
    assert len([t for t in log if t["role"] == "customer"]) == limit + 5


async def test_a_question_outside_the_knowledge_base_goes_to_a_person_honestly(running: Running) -> None:
    [reply] = await running.say(RU, "Какой курс биткоина будет завтра?")
    assert reply.text is not None and reply.text.startswith("Передаю ваш вопрос сотруднику")
    ticket = await running.app.desk.open_ticket_of(RU.id)
    assert ticket is not None and ticket.reason.value == "bot_unsure"


async def test_the_bot_still_answers_after_a_restart_with_the_same_redis(
    tmp_path: Path, prepared: Path, encoder: Encoder, clean_redis: str
) -> None:
    """Like `./zabota demo` run twice: the embedded Redis outlives the Bot API server, whose updates are new."""
    for run in ("first", "second"):
        async with running_app(tmp_path / run, prepared, encoder, clean_redis) as running:
            [reply] = await running.say(RU, "Здравствуйте")
            assert (reply.text or "").startswith("Здравствуйте! Чем могу помочь?"), run


@pytest.mark.parametrize(
    "question",
    ["<b>жирный</b> & где мой заказ", "где мой заказ https://polka.example.com/orders/12345", "tracking number не работает, где посылка"],
)
async def test_russian_with_pasted_html_links_or_english_words_is_answered_in_russian(
    running: Running, question: str
) -> None:
    replies = await running.say(RU, question, count=1)
    text = replies[0].text or ""
    assert any(ch in text for ch in "абвгдежзийклмнопрстуфхцчшщыэюя"), text
    state = json.loads(await running.app.redis.get(keys.conversation_state(RU.id)) or "{}")
    assert state.get("lang", "ru") == "ru"

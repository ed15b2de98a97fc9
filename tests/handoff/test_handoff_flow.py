"""Hand-off end to end: the real bot, the emulator playing a customer and agents, a real Redis."""

from __future__ import annotations

import asyncio

from bot.emulator import EmulatedUser
from bot.telegram.routers.agents import ADMIN_COMMANDS, AGENT_COMMANDS
from handoff.tickets import TicketState
from kb_index.articles import Article
from tests.harness import AGENT_ID, SECOND_AGENT_ID, Running, labels

AGENT = EmulatedUser(id=AGENT_ID, first_name="Ольга", language_code="ru")
AGENT_EN = EmulatedUser(id=SECOND_AGENT_ID, first_name="Kate", language_code="en")


async def test_from_question_to_close_in_russian(running: Running) -> None:
    customer = EmulatedUser(id=801, first_name="Анна", language_code="ru")
    [online] = await running.say(AGENT, "/online")
    assert online.text is not None and online.text.startswith("Вы на смене")

    await running.say(customer, "Добрый день! Не могу оплатить заказ картой")
    await running.settle(customer.id)
    [queued] = await running.say(customer, "позовите оператора")
    assert queued.text is not None and "1-й в очереди" in queued.text
    assert labels(queued) == ["✅ Я нашёл ответ"]

    [announcement] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    assert announcement.text is not None and announcement.text.startswith("🆕 T")
    ticket_id = announcement.text.split(":")[0].removeprefix("🆕 ")
    [card] = await running.tap(AGENT, announcement, f"Взять {ticket_id}")
    assert card.text is not None
    assert f"📋 {ticket_id} · Анна · язык: ru" in card.text
    assert "причина: попросил человека" in card.text
    assert "Клиент: Добрый день! Не могу оплатить заказ картой" in card.text
    assert "позовите оператора" in card.text  # the message that asked for a person is in the context too
    assert "Бот пробовал: «" in card.text  # the article the bot answered with

    [joined] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert joined.text == "К разговору подключился сотрудник — Ольга. Пишите сюда: вся переписка перед ним."

    await running.emulator.send_message(customer, "Карта Мир, пишет «отказ банка»")
    [relayed] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    assert relayed.text == f"💬 {ticket_id} · Анна\nКарта Мир, пишет «отказ банка»"

    await running.emulator.send_message(AGENT, "Попробуйте, пожалуйста, оплатить ещё раз через СБП.")
    [answer] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert answer.text == "Попробуйте, пожалуйста, оплатить ещё раз через СБП."

    await running.emulator.send_photo(customer, caption="Вот скриншот")
    header, photo = await running.emulator.wait_for_bot_messages(AGENT.id, 2, timeout=15)
    assert header.text == f"💬 {ticket_id} · Анна"
    assert "photo" in photo.message and photo.text == "Вот скриншот"

    [question] = await running.say(AGENT, "/close")
    assert labels(question) == ["✅ Решён", "❌ Не решён"]
    [closed] = await running.tap(AGENT, question, "✅ Решён")
    assert closed.text == f"{ticket_id} закрыт: решён."
    [goodbye] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert goodbye.text is not None and goodbye.text.startswith("Сотрудник завершил разговор")
    ticket = await running.app.desk.get(ticket_id)
    assert ticket is not None and ticket.state is TicketState.CLOSED and ticket.outcome == "resolved"
    assert ticket.first_reply_at >= ticket.taken_at > 0

    # The bot, not the agent, asks how it went: CSAT about the help, then CES, in the same message.
    [survey] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert survey.text is not None and survey.text.startswith("Насколько вы довольны помощью нашего сотрудника?")
    assert labels(survey) == ["1", "2", "3", "4", "5"]
    await running.emulator.press_button(customer, survey, "5")
    await running.emulator.wait_until(lambda: "Насколько легко" in (running.emulator.bot_messages(customer.id)[-1].text or ""), 15)

    [answer_again] = await running.say(customer, "Как отменить заказ?")  # the bot answers again
    assert answer_again.text is not None and answer_again.text.startswith("Как отменить заказ?")


async def test_from_question_to_close_in_english_with_an_english_agent(running: Running) -> None:
    customer = EmulatedUser(id=802, first_name="John", language_code="en")
    await running.say(AGENT_EN, "/online")
    [queued] = await running.say(customer, "I need to speak with a human operator")
    assert queued.text is not None and "You are number 1 in the queue" in queued.text
    [announcement] = await running.emulator.wait_for_bot_messages(AGENT_EN.id, 1, timeout=15)
    ticket_id = (announcement.text or "").split(":")[0].removeprefix("🆕 ")
    [card] = await running.tap(AGENT_EN, announcement, f"Take {ticket_id}")
    assert card.text is not None and "reason: asked for a person" in card.text
    assert "The bot tried: nothing (asked for a person straight away)" in card.text
    [joined] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert joined.text == "Kate from our support team has joined. Write here — they can see the whole conversation."
    await running.emulator.send_message(AGENT_EN, "Hi John, how can I help?")
    [hello] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert hello.text == "Hi John, how can I help?"
    [closed] = await running.say(AGENT_EN, "/close resolved")
    assert closed.text == f"{ticket_id} closed: resolved."
    [goodbye] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert goodbye.text is not None and goodbye.text.startswith("The agent has closed the conversation")


async def test_a_second_agent_is_told_who_already_took_the_ticket(running: Running) -> None:
    customer = EmulatedUser(id=803, first_name="Иван", language_code="ru")
    await running.say(AGENT, "/online")
    await running.say(AGENT_EN, "/online")
    await running.say(customer, "хочу поговорить с человеком")
    [mine] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    [theirs] = await running.emulator.wait_for_bot_messages(AGENT_EN.id, 1, timeout=15)
    ticket_id = (mine.text or "").split(":")[0].removeprefix("🆕 ")
    await running.tap(AGENT, mine, f"Взять {ticket_id}")
    # Once taken, the Take button disappears from everyone's announcement...
    await running.emulator.wait_until(lambda: labels(running.emulator.bot_messages(AGENT_EN.id)[0]) == [], timeout=15)
    # ...but a tap sent before that edit arrived still reaches the bot, and is told who has the ticket.
    await running.emulator.press_button_data(AGENT_EN, theirs, f"t:take:{ticket_id}:")
    [refusal] = await running.emulator.wait_for_bot_messages(AGENT_EN.id, 1, timeout=15)
    assert refusal.text == f"{ticket_id} was already taken by Ольга."


async def test_a_reply_to_a_relayed_message_goes_to_that_customer(running: Running) -> None:
    first = EmulatedUser(id=804, first_name="Первый", language_code="ru")
    second = EmulatedUser(id=805, first_name="Второй", language_code="ru")
    await running.say(AGENT, "/online")
    for customer in (first, second):
        await running.say(customer, "позовите оператора")
        await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
        await running.say(AGENT, "/next")  # the context card
        await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)  # "... joined"
    await running.emulator.send_message(first, "вопрос от первого")
    [relayed] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    # The agent's current ticket is the second customer's, but he answers the first customer's message.
    await running.emulator.send_message(AGENT, "ответ первому", reply_to_message_id=relayed.message_id)
    [answer] = await running.emulator.wait_for_bot_messages(first.id, 1, timeout=15)
    assert answer.text == "ответ первому"
    await running.emulator.send_message(AGENT, "ответ второму")
    [other] = await running.emulator.wait_for_bot_messages(second.id, 1, timeout=15)
    assert other.text == "ответ второму"


async def test_a_customer_talking_with_a_person_may_write_many_messages_at_once(running: Running) -> None:
    """Flood control is for the bot's answers: past its limit, every message still reaches the agent."""
    customer = EmulatedUser(id=806, first_name="Пётр", language_code="ru")
    await running.talking_with(customer, AGENT)
    burst = running.app.settings.dialog.flood_limit + 3
    for number in range(burst):
        await running.emulator.send_message(customer, f"подробность {number}")
    relayed = await running.emulator.wait_for_bot_messages(AGENT.id, burst, timeout=30)
    assert sorted(m.text or "" for m in relayed) == sorted(f"💬 T1 · Пётр\nподробность {n}" for n in range(burst))
    assert await running.settle(customer.id, quiet=1.0) == []  # no "one moment" for him
    for number in range(burst):
        await running.emulator.send_message(AGENT, f"ответ {number}")
    answers = await running.emulator.wait_for_bot_messages(customer.id, burst, timeout=30)
    assert [m.text for m in answers] == [f"ответ {n}" for n in range(burst)]


async def test_a_ticket_passed_to_a_colleague_arrives_with_its_context_and_the_notes_on_it(running: Running) -> None:
    """The colleague sees what the first agent wrote for him (never the customer), and the customer is told."""
    customer = EmulatedUser(id=808, first_name="Олег", language_code="ru")
    await running.say(AGENT, "/online")
    await running.say(AGENT_EN, "/online")
    await running.say(customer, "позовите оператора")
    [announcement] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    await running.emulator.wait_for_bot_messages(AGENT_EN.id, 1, timeout=15)
    ticket_id = (announcement.text or "").split(":")[0].removeprefix("🆕 ")
    await running.tap(AGENT, announcement, f"Взять {ticket_id}")
    await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)  # "... joined"
    [saved] = await running.say(AGENT, "/note Ждёт возврат за заказ 4581, уже звонил дважды")
    assert saved.text == f"Заметка к {ticket_id} сохранена (клиент её не видит)."
    [choose] = await running.say(AGENT, "/transfer")
    await running.tap(AGENT, choose, "Kate")
    told, card = await running.emulator.wait_for_bot_messages(AGENT_EN.id, 2, timeout=15)
    assert told.text == f"Ольга passed {ticket_id} to you."
    assert card.text is not None and card.text.startswith(f"📋 {ticket_id} · Олег")
    assert "\nNotes: Ольга: Ждёт возврат за заказ 4581, уже звонил дважды\n" in card.text
    said = [m.text or "" for m in await running.settle(customer.id)]
    assert any("Kate" in text for text in said) and not any("4581" in text for text in said)


async def test_a_customer_who_found_the_answer_cancels_the_wait(running: Running) -> None:
    customer = EmulatedUser(id=806, first_name="Вера", language_code="ru")
    [queued] = await running.say(customer, "позовите оператора")
    [cancelled] = await running.tap(customer, queued, "✅ Я нашёл ответ")
    assert cancelled.text == "Хорошо, отменяю запрос. Рада, что вы нашли ответ!"
    ticket = (await running.app.desk.customer_history(customer.id))[0]
    assert ticket.state is TicketState.CLOSED and ticket.outcome == "customer_resolved"
    assert await running.app.desk.queue.length() == 0


async def test_a_customer_cannot_use_agent_commands_and_learns_nothing(running: Running) -> None:
    customer = EmulatedUser(id=807, first_name="Мошенник", language_code="ru")
    other = EmulatedUser(id=808, first_name="Клиент", language_code="ru")
    await running.say(other, "позовите оператора")
    ticket = await running.app.desk.open_ticket_of(other.id)
    assert ticket is not None
    for command in (*AGENT_COMMANDS, *ADMIN_COMMANDS):
        [reply] = await running.say(customer, f"/{command} {ticket.id}")
        assert reply.text == "Эта команда доступна только сотрудникам поддержки.", command
    # A forged "take" button press changes nothing either.
    await running.say(customer, "привет")
    forged = running.emulator.bot_messages(customer.id)[-1]
    callback = await running.emulator.press_button_data(customer, forged, f"t:take:{ticket.id}:")
    answer = await running.emulator.wait_for_callback_answer(callback["id"])
    assert answer.text == "Эта команда доступна только сотрудникам поддержки."
    after = await running.app.desk.get(ticket.id)
    assert after is not None and after.state is TicketState.WAITING and after.agent_id == 0
    assert await running.app.desk.open_ticket_of(customer.id) is None


async def test_a_customer_who_switches_to_russian_while_waiting_is_told_the_rest_in_russian(running: Running) -> None:
    customer = EmulatedUser(id=803, first_name="Max", language_code="en")
    await running.say(AGENT, "/online")
    [queued] = await running.say(customer, "I need to speak with a human operator")
    assert queued.text is not None and "You are number 1 in the queue" in queued.text
    [announcement] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    ticket_id = (announcement.text or "").split(":")[0].removeprefix("🆕 ")

    [acknowledged] = await running.say(customer, "Простите, лучше по-русски: у меня не проходит оплата картой")
    assert (acknowledged.text or "").startswith("Ваш вопрос уже в очереди: вы 1-й")
    ticket = await running.app.desk.get(ticket_id)
    assert ticket is not None and ticket.lang == "ru"

    [card] = await running.tap(AGENT, announcement, f"Взять {ticket_id}")
    assert card.text is not None and "язык: ru" in card.text
    [joined] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert joined.text == "К разговору подключился сотрудник — Ольга. Пишите сюда: вся переписка перед ним."


async def test_an_article_an_agent_sends_reaches_the_customer_whatever_its_title(running: Running) -> None:
    """A title with ``&`` and ``<`` is text, not markup: Telegram would refuse the message otherwise."""
    index = running.app.kb.index
    articles = [a for article_id in index.article_ids for a in index.versions_of(article_id).values()]
    title = "Подарочные сертификаты <Polka> & скидки"
    articles.append(Article("gift-cards", title, "Сертификат действует **год** с даты покупки.", "ru",
                            ("Сколько действует подарочный сертификат?",)))
    await asyncio.to_thread(running.app.kb.build_from_articles, articles)

    customer = EmulatedUser(id=804, first_name="Анна", language_code="ru")
    await running.say(AGENT, "/online")
    await running.say(customer, "позовите оператора")
    [announcement] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    ticket_id = (announcement.text or "").split(":")[0].removeprefix("🆕 ")
    await running.tap(AGENT, announcement, f"Взять {ticket_id}")
    await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)  # an agent joined

    [choice] = await running.say(AGENT, "/kb подарочный сертификат")
    [button] = [label for label in labels(choice) if label.startswith("Подарочные сертификаты")]
    await running.emulator.press_button(AGENT, choice, button)
    [article] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert article.text == f"{title}\n\nСертификат действует год с даты покупки."

"""action_handoff: a Rasa customer reaches a Zabota agent, who sees the Rasa conversation and talks to him through it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from rasa_sdk.executor import ActionExecutor

from bot.emulator import EmulatedUser
from bot.rasa import RasaConversations, RasaOutbox
from bot.rasa.bridge import RasaBridge
from bot.rasa.server import ActionServer
from bot.runner import build_bridge
from bot.settings import ActionsSettings
from handoff.ports import OutboxEntry
from handoff.tickets import TicketState
from tests.harness import AGENT_ID, Running
from tests.rasa.conftest import RasaApi, RasaConversation, run_action, slots_set, texts

AGENT = EmulatedUser(id=AGENT_ID, first_name="Ольга", language_code="ru")


@pytest.fixture
async def bridge(running: Running, rasa_api: RasaApi) -> AsyncIterator[RasaBridge]:
    """The bridge ``zabota actions`` runs beside the action server, talking to Rasa's API on loopback."""
    running.app.settings.actions = ActionsSettings(rasa_url=rasa_api.url, poll_seconds=0.1)
    bridge = build_bridge(running.app)
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    yield bridge
    stop.set()
    await task


async def a_customer_asks_for_a_person(executor: ActionExecutor, sender: str) -> RasaConversation:
    conversation = RasaConversation(sender)
    conversation.slots["zabota_customer_name"] = "Анна Петрова"
    conversation.customer_says("Привет", intent="greet")
    conversation.bot_says("Здравствуйте! Чем помочь?")
    conversation.customer_says("Как отменить заказ?")
    await run_action(executor, conversation, "action_kb_answer")
    conversation.customer_says("Это не помогло, позовите человека", intent="human_handoff")
    return conversation


async def test_over_http_a_hand_off_queues_a_ticket_with_the_rasa_conversation_and_pauses_it(
    running: Running, executor: ActionExecutor
) -> None:
    await running.say(AGENT, "/online")
    conversation = await a_customer_asks_for_a_person(executor, "web-7731")

    async with ActionServer(executor) as server, aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/webhook", json=conversation.call("action_handoff")) as response:
            assert response.status == 200
            answer = await response.json()

    [queued] = texts(answer)
    assert queued.startswith("Передаю ваш вопрос сотруднику") and "Вы 1-й в очереди" in queued
    assert {"event": "pause", "timestamp": None} in answer["events"]
    ticket_id = slots_set(answer)["zabota_ticket_id"]

    ticket = await running.app.desk.get(ticket_id)
    assert ticket is not None and ticket.state is TicketState.WAITING and ticket.channel == "rasa"
    assert ticket.customer_name == "Анна Петрова" and ticket.lang == "ru"
    assert ticket.question == "Это не помогло, позовите человека"
    assert await running.app.desk.queue.position(ticket_id) == 1

    [announcement] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    assert announcement.text == f"🆕 {ticket_id}: Анна Петрова · rasa (ru) — попросил человека\n«Это не помогло, позовите человека»"
    [card] = await running.tap(AGENT, announcement, f"Взять {ticket_id}")
    assert card.text is not None
    assert f"📋 {ticket_id} · Анна Петрова · rasa · язык: ru" in card.text
    assert "Бот пробовал: «Как отменить заказ?»" in card.text
    transcript = card.text.split("Последние сообщения:\n")[1].split("\nПрежние обращения")[0].splitlines()
    assert transcript[0] == "Клиент: Привет"
    assert transcript[1] == "Бот: Здравствуйте! Чем помочь?"
    assert transcript[2] == "Клиент: Как отменить заказ?"
    assert transcript[3].startswith("Бот: Как отменить заказ?") and "Отменить заказ бесплатно можно" in transcript[3]
    assert transcript[4] == "Клиент: Это не помогло, позовите человека"


async def test_the_agent_and_the_rasa_customer_talk_through_rasa_until_the_ticket_closes(
    running: Running, executor: ActionExecutor, rasa_api: RasaApi, bridge: RasaBridge
) -> None:
    sender = "web-9001"
    await running.say(AGENT, "/online")
    conversation = await a_customer_asks_for_a_person(executor, sender)
    ticket_id = slots_set(await run_action(executor, conversation, "action_handoff"))["zabota_ticket_id"]
    [announcement] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    await running.tap(AGENT, announcement, f"Взять {ticket_id}")

    # What Zabota tells the customer arrives in his Rasa conversation, sent out through his own channel.
    joined = "К разговору подключился сотрудник — Ольга. Пишите сюда: вся переписка перед ним."
    await rasa_api.wait_for(lambda: joined in rasa_api.bot_texts(sender))
    [pushed] = [e for e in rasa_api.appended[sender] if e.get("text") == joined]
    assert pushed["_query"] == {"execute_side_effects": "true", "output_channel": "latest"}

    # The paused conversation's new message goes to the agent; his answer comes back into the conversation.
    rasa_api.customer_writes(sender, "Заказ 4581, оформила вчера вечером")
    [relayed] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    assert relayed.text == f"💬 {ticket_id} · Анна Петрова\nЗаказ 4581, оформила вчера вечером"
    await running.emulator.send_message(AGENT, "Отменила заказ 4581, деньги вернутся за 3 дня.")
    await rasa_api.wait_for(lambda: "Отменила заказ 4581, деньги вернутся за 3 дня." in rasa_api.bot_texts(sender))

    # Closing the ticket resumes the conversation in Rasa, and the survey arrives with buttons Rasa can use.
    [question] = await running.say(AGENT, "/close")
    await running.tap(AGENT, question, "✅ Решён")
    await rasa_api.wait_for(lambda: any(e["event"] == "resume" for e in rasa_api.appended[sender]))
    await rasa_api.wait_for(lambda: any(t.startswith("Насколько вы довольны") for t in rasa_api.bot_texts(sender)))
    assert "Сотрудник завершил разговор. Если появятся вопросы — пишите, я на связи." in rasa_api.bot_texts(sender)
    survey = next(e for e in rasa_api.appended[sender] if str(e.get("text")).startswith("Насколько вы довольны"))
    buttons = survey["data"]["buttons"]
    assert [b["title"] for b in buttons] == ["1", "2", "3", "4", "5"]

    context = await running.app.desk.context(ticket_id)
    said = [(turn.role, turn.text) for turn in context if turn.kind == "text"]
    assert ("customer", "Заказ 4581, оформила вчера вечером") in said
    assert ("agent", "Отменила заказ 4581, деньги вернутся за 3 дня.") in said

    # The customer taps "5" in Rasa: the answer lands in the same survey store as Telegram's.
    conversation.paused = False
    conversation.taps(buttons[4])
    answer = await run_action(executor, conversation, "action_record_survey_answer")
    assert texts(answer)[0].startswith("Спасибо!\n\nНасколько легко было решить ваш вопрос?")
    [stored] = await running.app.surveys.surveys(0)
    assert stored.answers == {"csat": 5} and stored.ticket_id == ticket_id and stored.agent_name == "Ольга"
    assert stored.channel == "rasa"


async def test_messages_for_a_rasa_customer_wait_while_rasa_is_down_and_go_out_in_order(
    running: Running, rasa_api: RasaApi
) -> None:
    conversations = RasaConversations(running.app.redis)
    chat_id = await conversations.chat_id("web-offline")
    outbox = RasaOutbox(running.app.redis)
    for text in ("Первое", "Второе"):
        await outbox.deliver(OutboxEntry(to=chat_id, direction="to_customer", text=text))
    running.app.settings.actions = ActionsSettings(rasa_url="http://127.0.0.1:9", poll_seconds=0.1)  # nothing there
    bridge = build_bridge(running.app, conversations)
    try:
        with pytest.raises(aiohttp.ClientConnectionError):
            await bridge.push_outbox()
        assert [m.text for _, m in await outbox.pending()] == ["Первое", "Второе"]

        bridge.rasa_url = rasa_api.url  # Rasa is back
        assert await bridge.push_outbox() == 2
    finally:
        await bridge.close()
    assert rasa_api.bot_texts("web-offline") == ["Первое", "Второе"]
    assert await outbox.pending() == []

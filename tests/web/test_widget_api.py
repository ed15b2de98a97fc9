"""The website chat widget's API on the real application: a real Redis, the real model, agents in the emulator."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.core.channels import Channel, channel_of
from bot.emulator import EmulatedUser
from bot.web.visitors import identity_hash
from handoff.tickets import TicketState
from tests.harness import AGENT_ID, Running

AGENT = EmulatedUser(id=AGENT_ID, first_name="Ольга", language_code="ru")
HOSTILE = '<script>alert("x")</script><img src=x onerror="alert(1)"> <a href="javascript:alert(2)">link</a>'


@pytest.fixture
async def client(running: Running) -> AsyncIterator[TestClient[Any, Any]]:
    assert running.app.widget is not None
    async with TestClient(TestServer(running.app.widget.web_app())) as test_client:
        yield test_client


async def session(client: TestClient[Any, Any], **body: object) -> str:
    response = await client.post("/api/session", json={"lang": "ru", **body})
    assert response.status == 200, await response.text()
    return str((await response.json())["token"])


def chat_of(running: Running, token: str) -> int:
    assert running.app.widget is not None
    chat_id = running.app.widget.visitors.chat_of(token)
    assert chat_id is not None
    return chat_id


async def shown(running: Running, token: str) -> list[dict[str, Any]]:
    """The messages the visitor's widget shows now, edits applied."""
    assert running.app.widget is not None
    messages: dict[int, dict[str, Any]] = {}
    for event in await running.app.widget.chats.events(chat_of(running, token)):
        if event.data["type"] == "message":
            messages[event.data["n"]] = dict(event.data)
        else:
            messages[event.data["n"]].update({k: v for k, v in event.data.items() if k != "type"})
    return list(messages.values())


async def wait_shown(running: Running, token: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        messages = await shown(running, token)
        if len(messages) >= count or loop.time() > deadline:
            assert len(messages) >= count, messages
            return messages
        await asyncio.sleep(0.1)


async def send(client: TestClient[Any, Any], token: str, text: str, ident: str) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/send", json={"token": token, "id": ident, "text": text})
    return response.status, await response.json()


def labels(message: dict[str, Any]) -> list[str]:
    return [button["label"] for row in message["buttons"] for button in row]


def data_of(message: dict[str, Any], label: str) -> str:
    return next(button["data"] for row in message["buttons"] for button in row if button["label"] == label)


async def test_a_visitor_gets_the_greeting_and_an_answer_once(running: Running, client: TestClient[Any, Any]) -> None:
    token = await session(client)
    assert channel_of(chat_of(running, token)) is Channel.WEB
    [greeting] = await shown(running, token)
    assert greeting["role"] == "bot" and "Здравствуйте" in greeting["html"]

    status, _ = await send(client, token, "Как отменить заказ?", "m1")
    assert status == 200
    messages = await shown(running, token)
    assert [m["role"] for m in messages] == ["bot", "visitor", "bot"]
    answer = messages[-1]
    assert "<b>Как отменить заказ?</b>" in answer["html"]  # the article, its title in bold
    assert "Помог ли ответ?" in answer["html"] or labels(answer)

    # The same message again (a retry after a lost answer, a second tab): shown and answered once.
    status, body = await send(client, token, "Как отменить заказ?", "m1")
    assert status == 200 and body.get("repeated") is True
    assert len(await shown(running, token)) == 3

    # The session survives a reload: the same token, the same conversation.
    assert await session(client, token=token) == token
    assert len(await shown(running, token)) == 3


async def test_a_visitor_cannot_read_another_ones_conversation(running: Running, client: TestClient[Any, Any]) -> None:
    mine = await session(client)
    theirs = await session(client)
    assert mine != theirs
    number, signature = mine.split(".")
    forged = f"{int(number) + 1}.{signature}"  # the other visitor's number with my signature
    response = await client.get("/api/events", params={"token": forged})
    assert response.status == 401
    status, body = await send(client, forged, "чужой чат", "x1")
    assert status == 401 and "unknown visitor" in body["error"]
    # A broken token starts a new visitor rather than finding anyone's.
    assert await session(client, token=forged) not in (mine, theirs)


async def test_hostile_text_is_shown_escaped_both_ways(running: Running, client: TestClient[Any, Any]) -> None:
    token = await session(client)
    await send(client, token, HOSTILE, "h1")
    visitor_message = (await shown(running, token))[1]
    assert visitor_message["role"] == "visitor"
    assert "<script" not in visitor_message["html"] and "<img" not in visitor_message["html"]
    assert "&lt;script&gt;" in visitor_message["html"]

    assert running.app.widget is not None
    chats = running.app.widget.chats
    await chats.add_message(chat_of(running, token), "bot", HOSTILE + " <b>жирный</b>", is_html=True)
    bot_message = (await shown(running, token))[-1]
    assert "<script" not in bot_message["html"] and "onerror" not in bot_message["html"]
    assert "javascript:" not in bot_message["html"] and "<b>жирный</b>" in bot_message["html"]


async def test_limits_answer_in_the_visitors_language(running: Running, client: TestClient[Any, Any]) -> None:
    token = await session(client)
    status, body = await send(client, token, "а" * 2001, "long")
    assert status == 413 and "2000 символов" in body["error"]
    statuses = [(await send(client, token, f"привет {n}", f"r{n}"))[0] for n in range(22)]
    assert statuses.count(429) >= 2 and statuses[0] == 200
    status, body = await send(client, token, "ещё", "r-last")
    assert status == 429 and "подождите минуту" in body["error"]


async def test_origins_and_signed_identities(running: Running, client: TestClient[Any, Any]) -> None:
    refused = await client.post("/api/session", json={}, headers={"Origin": "https://evil.example"})
    assert refused.status == 403 and "WEB_ALLOWED_ORIGINS" in (await refused.json())["error"]

    assert running.app.widget is not None
    running.app.widget.visitors.identity_secret = "site-secret"  # as WEB_IDENTITY_SECRET would set it
    forged = await client.post("/api/session", json={"user": {"id": "42", "name": "Мария", "hash": "00" * 32}})
    assert forged.status == 403 and "HMAC-SHA256" in (await forged.json())["error"]
    signed = {"id": "42", "name": "Мария", "hash": identity_hash("site-secret", "42")}
    first = await session(client, user=signed)
    second = await session(client, user=signed)  # another device: the same conversation
    assert first == second
    assert (await running.app.widget.visitors.visitor(chat_of(running, first))).name == "Мария"


async def test_handed_off_to_telegram_and_back(running: Running, client: TestClient[Any, Any]) -> None:
    await running.say(AGENT, "/online")
    token = await session(client)
    response = await client.post("/api/human", json={"token": token})
    assert response.status == 200
    messages = await wait_shown(running, token, 2)
    assert "в очереди" in messages[-1]["html"]
    ticket = await running.app.desk.open_ticket_of(chat_of(running, token))
    assert ticket is not None and ticket.channel == "web"

    [announcement] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    assert announcement.text is not None and ticket.id in announcement.text and "· web" in announcement.text
    await running.tap(AGENT, announcement, f"Взять {ticket.id}")
    joined = await wait_shown(running, token, 3)
    assert "подключился сотрудник" in joined[-1]["html"]

    await send(client, token, HOSTILE, "w1")
    await send(client, token, "Это текст со страницы, а вопрос мой — где заказ?", "w2")  # the ticket stays Russian
    relayed = await running.emulator.wait_for_bot_messages(AGENT.id, 2, timeout=15)
    assert relayed[0].text == f"💬 {ticket.id} · {ticket.customer_name}\n{HOSTILE}"  # Telegram shows it as text

    await running.emulator.send_message(AGENT, "Здравствуйте! <img src=x onerror=alert(1)> Чем помочь?")
    answered = await wait_shown(running, token, 6)
    assert answered[-1]["role"] == "agent"
    assert answered[-1]["html"] == "Здравствуйте! &lt;img src=x onerror=alert(1)&gt; Чем помочь?"

    # A photo from the agent reaches the visitor as the file itself, served to him alone.
    await running.emulator.send_photo(AGENT, caption="Вот так выглядит экран оплаты")
    photo = (await wait_shown(running, token, 7))[-1]
    assert photo["role"] == "agent" and photo["file"]["type"] == "image/jpeg"
    assert photo["html"] == "Вот так выглядит экран оплаты"
    fetched = await client.get(f"/api/file/{photo['file']['id']}", params={"token": token})
    assert fetched.status == 200 and (await fetched.read()).startswith(b"\xff\xd8\xff")

    [question] = await running.say(AGENT, "/close")
    await running.tap(AGENT, question, "✅ Решён")
    survey = (await wait_shown(running, token, 9))[-1]
    assert "Насколько вы довольны" in survey["html"] and labels(survey) == ["1", "2", "3", "4", "5"]
    tap = await client.post("/api/tap", json={"token": token, "message": survey["n"], "data": data_of(survey, "5")})
    assert tap.status == 200
    edited = (await shown(running, token))[-1]
    assert "Насколько легко" in edited["html"]  # the next question, in place
    answers = await running.app.surveys.get(re.sub(r"^s:([^:]+):.*$", r"\1", data_of(survey, "5")))
    assert answers is not None and answers.answers.get("csat") == 5
    closed = await running.app.desk.get(ticket.id)
    assert closed is not None and closed.state is TicketState.CLOSED


async def test_events_stream_live_and_resume(running: Running, client: TestClient[Any, Any]) -> None:
    token = await session(client)
    response = await client.get("/api/events", params={"token": token})
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")

    async def next_event() -> tuple[str, dict[str, Any]]:
        ident = ""
        while True:
            line = (await asyncio.wait_for(response.content.readline(), 20)).decode().rstrip("\n")
            if line.startswith("id: "):
                ident = line[4:]
            elif line.startswith("data: "):
                return ident, json.loads(line[6:])

    first_id, greeting = await next_event()
    assert greeting["type"] == "message" and greeting["role"] == "bot"
    await send(client, token, "Как отменить заказ?", "live1")
    _, mine = await next_event()
    assert mine["role"] == "visitor" and mine["cid"] == "live1"
    _, answer = await next_event()
    assert answer["role"] == "bot"
    response.close()

    # A lost connection resumes where it stopped: nothing missed, nothing twice.
    resumed = await client.get("/api/events", params={"token": token}, headers={"Last-Event-ID": first_id})
    line = b""
    while not line.startswith(b"data: "):
        line = await asyncio.wait_for(resumed.content.readline(), 20)
    assert json.loads(line[6:])["cid"] == "live1"
    resumed.close()


async def test_the_telegram_login_widget_signs_staff_in_when_its_hash_is_right(running: Running) -> None:
    import hashlib
    import hmac
    import time

    from bot.web.server import web_app
    from tests.harness import SECOND_AGENT_ID

    assert running.app.bot is not None

    def signed(user_id: int, age: float = 0.0, token: str = running.app.bot.token) -> dict[str, str]:
        fields = {"id": str(user_id), "first_name": "Катя", "auth_date": str(int(time.time() - age))}
        checked = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
        secret = hashlib.sha256(token.encode()).digest()
        return {**fields, "hash": hmac.new(secret, checked.encode(), hashlib.sha256).hexdigest()}

    async with TestClient(TestServer(web_app(running.app.widget, running.app.console))) as http:
        for refused in (signed(SECOND_AGENT_ID, token="123:another-bot"),  # forged: not this bot's token
                        signed(SECOND_AGENT_ID, age=2 * 86400),  # too old: replayed
                        signed(9303)):  # not staff
            response = await http.get("/console/telegram", params=refused, allow_redirects=False)
            assert response.status == 403
        response = await http.get("/console/telegram", params=signed(SECOND_AGENT_ID), allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/console"
        cookie = response.cookies["zabota_console"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        inbox = await http.get("/console")
        assert inbox.status == 200 and "Обращения" in await inbox.text()


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


async def upload(client: TestClient[Any, Any], token: str, ident: str, data: bytes, name: str) -> Any:
    from aiohttp import FormData

    form = FormData()
    form.add_field("token", token)
    form.add_field("id", ident)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return await client.post("/api/upload", data=form)


async def test_a_visitor_sends_a_picture_to_his_agent_and_only_he_can_fetch_it(
    running: Running, client: TestClient[Any, Any]
) -> None:
    await running.say(AGENT, "/online")
    token = await session(client)
    await client.post("/api/human", json={"token": token})
    [announcement] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    ticket = await running.app.desk.open_ticket_of(chat_of(running, token))
    assert ticket is not None
    await running.tap(AGENT, announcement, f"Взять {ticket.id}")

    response = await upload(client, token, "f1", PNG, "скриншот <ошибки>.png")
    assert response.status == 200, await response.text()
    [document] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    assert "document" in document.message and ticket.id in (document.text or "")
    mine = next(m for m in await shown(running, token) if m.get("file"))
    assert mine["file"]["type"] == "image/png" and mine["file"]["name"] == "скриншот _ошибки_.png"

    fetched = await client.get(f"/api/file/{mine['file']['id']}", params={"token": token})
    assert fetched.status == 200 and await fetched.read() == PNG
    assert fetched.headers["Content-Disposition"].startswith("attachment")
    assert fetched.headers["X-Content-Type-Options"] == "nosniff"
    stranger = await session(client)
    assert (await client.get(f"/api/file/{mine['file']['id']}", params={"token": stranger})).status == 404

    refused = await upload(client, token, "f2", b"MZ\x90\x00" + bytes(100), "setup.exe")
    assert refused.status == 415 and "PDF" in (await refused.json())["error"]
    running.app.widget.files.max_bytes = 50  # type: ignore[union-attr]
    too_large = await upload(client, token, "f3", PNG + bytes(100), "big.png")
    assert too_large.status == 413 and "МБ" in (await too_large.json())["error"]


async def test_the_webhook_port_serves_the_widget_and_the_workplace_too(running: Running) -> None:
    """WEB_ON_WEBHOOK_PORT: one address for the proxy; Telegram's updates and the browsers' pages side by side."""
    from pydantic import SecretStr

    from bot.runner import webhook_app
    from tests.bot.test_inbox import message_update

    app = running.app
    app.settings.telegram = app.settings.telegram.model_copy(update={"webhook_secret": SecretStr("s3cret")})
    customer = 9610
    await running.say(EmulatedUser(id=customer, first_name="Ира", language_code="ru"), "/start")  # the chat exists
    update = message_update(900_001, customer, "Как отменить заказ?").model_dump(mode="json", exclude_unset=True)
    async with TestClient(TestServer(webhook_app(app, with_web=True))) as client:
        stored = await client.post(app.settings.telegram.webhook_path, json=update,
                                   headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"})
        assert stored.status == 200
        [answer] = await running.emulator.wait_for_bot_messages(customer, 1, timeout=15)
        assert (answer.text or "").startswith("Как отменить заказ?")
        widget = await client.get("/widget.js")
        assert widget.status == 200 and "zabota" in (await widget.text()).lower()
        console = await client.get("/console", allow_redirects=False)
        assert console.status == 401  # the workplace, asking for a sign-in
        assert "/console/static/console.css" in await console.text()

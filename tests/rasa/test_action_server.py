"""The action server Rasa's endpoints.yml points at: ``zabota actions``, called the way Rasa calls it."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
from pydantic import SecretStr
from rasa_sdk.executor import ActionExecutor

from bot.emulator import EmulatedUser
from bot.rasa.server import ActionServer
from bot.runner import run_action_server
from bot.settings import ActionsSettings, Settings, TelegramSettings
from kb_index import Encoder
from tests.harness import AGENT_ID, Running
from tests.rasa.conftest import ACTIONS, RasaApi, RasaConversation, slots_set, texts


async def test_rasa_finds_the_zabota_actions_and_an_unknown_one_is_refused(executor: ActionExecutor) -> None:
    async with ActionServer(executor) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/health") as health:
            assert await health.json() == {"status": "ok"}
        async with http.get(f"{server.url}/actions") as listed:
            assert sorted(a["name"] for a in await listed.json()) == sorted(ACTIONS)
        call = RasaConversation("web-404").call("action_order_status")
        async with http.post(f"{server.url}/webhook", json=call) as refused:
            assert refused.status == 404
            assert (await refused.json())["action_name"] == "action_order_status"

AGENT = EmulatedUser(id=AGENT_ID, first_name="Ольга", language_code="ru")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_zabota_actions_serves_answers_on_the_configured_port(
    running: Running, encoder: Encoder, rasa_api: RasaApi
) -> None:
    """What ``zabota actions`` runs: its own application from the settings, the action server, the bridge; here
    without a Telegram token: a hand-off it opens reaches the agent through the bot's process on the same Redis."""
    await running.say(AGENT, "/online")
    port = _free_port()
    base = running.app.settings
    settings = Settings(
        app=base.app,
        kb=base.kb,
        telegram=TelegramSettings(api_base=base.telegram.api_base, bot_token=SecretStr("")),
        redis=base.redis,
        dialog=base.dialog,
        handoff=base.handoff,
        surveys=base.surveys,
        actions=ActionsSettings(host="127.0.0.1", port=port, rasa_url=rasa_api.url, poll_seconds=0.1),
    )
    stop = asyncio.Event()
    serving = asyncio.create_task(run_action_server(settings, encoder=encoder, stop=stop))
    conversation = RasaConversation("web-cli")
    conversation.customer_says("Где мой заказ?")
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with http.post(f"http://127.0.0.1:{port}/webhook",
                                         json=conversation.call("action_kb_answer")) as response:
                        answer = await response.json()
                        break
                except aiohttp.ClientConnectionError:
                    assert not serving.done(), serving
                    assert time.monotonic() < deadline, "the action server did not start"
                    await asyncio.sleep(0.2)
        assert texts(answer)[0].startswith("Как отследить заказ?\n\n")
        assert slots_set(answer)["zabota_article_id"] == "order-tracking"

        conversation.customer_says("Позовите человека", intent="human_handoff")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/webhook", json=conversation.call("action_handoff")) as response:
                ticket_id = slots_set(await response.json())["zabota_ticket_id"]
        [announcement] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
        assert announcement.text is not None and announcement.text.startswith(f"🆕 {ticket_id}: ")
        [card] = await running.tap(AGENT, announcement, f"Взять {ticket_id}")  # its button works
        assert card.text is not None and card.text.startswith(f"📋 {ticket_id}")
    finally:
        stop.set()
        assert await serving == 0

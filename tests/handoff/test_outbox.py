"""The relay's outbox across an upgrade and across channels: what was stored is delivered as it was meant."""

from __future__ import annotations

import asyncio
import json

from aiogram import Bot

from bot.emulator import EmulatedUser, TelegramEmulator, buttons
from bot.rasa.channel import RasaOutbox, is_rasa_chat
from bot.telegram.delivery import TelegramDelivery
from bot.telegram.session import BotApiSession
from handoff import HandoffDesk, keys
from handoff.ports import OutboxEntry
from handoff.relay import Relay

CUSTOMER = EmulatedUser(id=905, first_name="Анна", language_code="ru")


def test_an_entry_round_trips_through_the_stream_fields() -> None:
    entry = OutboxEntry(to=5, direction="to_agent", ticket="T3", text="фото", kind="photo", header="💬 T3 · Анна",
                        source_chat=905, source_message=17, buttons=((("1", "s:x:csat:1"), ("2", "s:x:csat:2")),),
                        track="survey:x")
    assert OutboxEntry.from_fields(entry.to_fields()) == entry


async def test_entries_stored_by_the_previous_version_are_delivered_with_their_html_and_buttons(redis) -> None:  # type: ignore[no-untyped-def]
    """Entries written before an upgrade (a Telegram keyboard as JSON, HTML marked in the direction) still reach
    the customer as they were meant: formatted, with buttons that work; a Rasa customer's entry goes to Rasa."""
    async with TelegramEmulator() as emulator:
        await emulator.send_message(CUSTOMER, "/start")  # the customer has started the bot
        bot = Bot(emulator.token, session=BotApiSession(emulator.base_url))
        outbox = RasaOutbox(redis)
        relay = Relay(redis, HandoffDesk(redis), [outbox, TelegramDelivery(bot)], header=lambda ticket: ticket.id)
        keyboard = {"inline_keyboard": [[{"text": str(v), "callback_data": f"s:abc:csat:{v}"} for v in range(1, 6)]]}
        await redis.xadd(keys.OUTBOX, {"ticket": "T1", "to": str(CUSTOMER.id), "text": "<b>Доставка</b> &amp; оплата",
                                       "kind": "text", "direction": "to_customer_html", "header": "", "markup": "",
                                       "track": ""})
        await redis.xadd(keys.OUTBOX, {"ticket": "T1", "to": str(CUSTOMER.id), "text": "Оцените помощь",
                                       "kind": "text", "direction": "notice", "header": "",
                                       "markup": json.dumps(keyboard), "track": ""})
        rasa_customer = -(2**52) - 1  # how Rasa's conversations are numbered
        assert is_rasa_chat(rasa_customer)
        await relay.send_text(rasa_customer, "Оцените помощь", "T2",
                              buttons=((("1", "s:def:csat:1"), ("5", "s:def:csat:5")),))
        stop = asyncio.Event()
        worker = asyncio.create_task(relay.run(stop))
        try:
            await emulator.wait_for_bot_messages(CUSTOMER.id, 2, timeout=30)  # no dispatcher here: /start unanswered
        finally:
            stop.set()
            await worker
            await bot.session.close()
        article, survey = emulator.bot_messages(CUSTOMER.id)
        assert article.text == "Доставка & оплата"
        assert [e["type"] for e in article.entities] == ["bold"]
        assert [b.data for b in buttons(survey)] == [f"s:abc:csat:{v}" for v in range(1, 6)]
        [(_, to_rasa)] = await outbox.pending()
        assert to_rasa.chat_id == rasa_customer and [b["title"] for b in to_rasa.buttons] == ["1", "5"]

"""The agents' group gets one queue board, edited in place, within Telegram's 20 messages a minute into a group."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.emulator import EmulatedUser
from kb_index import Encoder
from tests.harness import AGENT_ID, running_app

pytestmark = pytest.mark.slow  # paces 100 tickets to Telegram's group limit

GROUP_ID = -1001234500001
SENDING = {"sendMessage", "editMessageText", "editMessageReplyMarkup", "copyMessage", "sendPhoto", "sendDocument"}


async def test_a_burst_of_100_tickets_moves_one_board_within_the_group_limit(
    tmp_path: Path, prepared: Path, encoder: Encoder, clean_redis: str
) -> None:
    async with running_app(tmp_path, prepared, encoder, clean_redis, paced=True, agents_chat_id=GROUP_ID) as running:
        emulator = running.emulator
        emulator.add_group("Поддержка", [EmulatedUser(id=AGENT_ID, first_name="Ольга", language_code="ru")],
                           chat_id=GROUP_ID)
        customers = [EmulatedUser(id=3000 + n, first_name="Клиент", language_code="ru") for n in range(100)]
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(emulator.send_message(c, "позовите оператора") for c in customers))

        def board() -> str:
            messages = emulator.bot_messages(GROUP_ID)
            return messages[-1].text or "" if messages else ""

        try:
            await emulator.wait_until(lambda: "Ждут: 100" in board(), 90)
        except Exception as error:
            failed = [(r.method, r.status, r.description) for r in emulator.requests if r.status != 200]
            silent = [c.id for c in customers if not emulator.bot_messages(c.id)]
            raise AssertionError(f"board: {board()!r}, queue: {await running.app.desk.queue.length()}, "
                                 f"failed: {failed[:5]}, silent: {silent}") from error
        elapsed = asyncio.get_running_loop().time() - started

        [only] = emulator.bot_messages(GROUP_ID)  # one message, edited in place, not one per ticket
        assert (only.text or "").startswith("📊 Очередь поддержки")
        to_group = [r for r in emulator.requests if r.method in SENDING and str(r.params.get("chat_id")) == str(GROUP_ID)]
        assert all(r.status == 200 for r in to_group), [r.description for r in to_group if r.status != 200]
        first = min(r.time for r in to_group)
        in_first_minute = [r for r in to_group if r.time - first < 60]
        assert len(in_first_minute) <= 20, f"{len(in_first_minute)} board updates in the first minute"
        assert await running.app.desk.queue.length() == 100
        assert elapsed < 90

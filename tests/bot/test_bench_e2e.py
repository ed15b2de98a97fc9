"""``zabota bench e2e``: the real bot in this process, Telegram's side (emulator and customers) in another."""

from __future__ import annotations

import pytest

from bot.bench_e2e import run_e2e
from bot.settings import AppSettings, Settings
from tests.conftest import MODEL_CACHE

pytestmark = pytest.mark.slow  # builds the sample index and runs the bot twice


async def test_every_customer_of_a_burst_is_answered_once_in_both_modes() -> None:
    settings = Settings(app=AppSettings(cache_dir=MODEL_CACHE))

    rows = await run_e2e(settings, 6, runs=1, timeout=60.0)

    assert [row["limits"] for row in rows] == ["Telegram's", "lifted"]
    for row in rows:
        assert row["unanswered"] == 0 and row["rejected_429"] == 0
        assert row["messages_per_answer"] == 1.0  # the answer carries its "did this help?" buttons
        assert isinstance(row["answered_per_second"], float) and row["answered_per_second"] > 0

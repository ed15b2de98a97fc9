"""``zabota bench e2e``: the real bot in this process, Telegram's side (emulator and customers) in another."""

from __future__ import annotations

import pytest

from bot.bench_e2e import DIALOGS, run_dialogs, run_e2e
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


async def test_typical_dialogs_are_counted_as_the_customer_sees_them() -> None:
    settings = Settings(app=AppSettings(cache_dir=MODEL_CACHE))

    rows = {row["dialog"]: row for row in await run_dialogs(settings)}

    assert set(rows) == set(DIALOGS)
    helped = rows["a greeting, an answer that helped"]
    # The greeting, the answer with its buttons, "glad to help", the survey's first question: one answer, and
    # tapping "yes" removed the buttons under it (an edit) and was acknowledged.
    assert (helped["messages"], helped["of_them_answers"], helped["edits"], helped["tap_answers"]) == (4, 1, 1, 1)
    for row in rows.values():
        assert row["of_them_answers"] == 1 and row["bot_api_requests"] == (
            row["messages"] + row["edits"] + row["tap_answers"]
        )

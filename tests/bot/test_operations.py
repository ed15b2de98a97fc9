"""What operators see: /metrics moving with a real dialog, /healthz failing when a dependency is gone, masked logs."""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.core.ports import Customer
from bot.emulator import EmulatedUser
from bot.factory import build_application, build_knowledge_base
from bot.logs import configure_logging, mask_personal_data
from bot.metrics import Metrics, OpsEndpoints
from handoff import HandoffDesk
from kb_index import Encoder, IndexStore
from surveys import SurveyService
from tests.harness import AGENT_ID, Running, make_settings


async def scrape(ops: OpsEndpoints) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with TestServer(ops.web_app()) as server, aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/metrics")) as response:
            assert response.status == 200
            text = await response.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def health(ops: OpsEndpoints) -> tuple[int, dict[str, str]]:
    async with TestServer(ops.web_app()) as server, aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/healthz")) as response:
            return response.status, json.loads(await response.text())


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_follow_a_scripted_dialog(running: Running) -> None:
    running.app.metrics.survey_refresh_seconds = 0  # survey figures as of each scrape, not of a minute ago
    before = await scrape(running.app.ops)
    customer = EmulatedUser(id=801, first_name="Анна", language_code="ru")
    [ask] = await running.say(customer, "Как отменить заказ?")
    _, survey = await running.tap(customer, ask, "👍 Да, помог", count=2)
    await running.emulator.press_button(customer, survey, "5")
    await running.emulator.wait_until(
        lambda: "довольны" in (running.emulator.bot_messages(customer.id)[-1].text or ""), 15
    )
    await running.emulator.press_button(customer, running.emulator.bot_messages(customer.id)[-1], "4")
    await running.emulator.wait_until(
        lambda: (running.emulator.bot_messages(customer.id)[-1].text or "").startswith("Спасибо за оценку"), 15
    )
    other = EmulatedUser(id=802, first_name="Борис", language_code="ru")
    await running.say(other, "позовите оператора")
    await running.settle(other.id)

    after = await scrape(running.app.ops)
    assert value(after, "zabota_updates_total", type="message") - value(before, "zabota_updates_total", type="message") == 2
    assert value(after, "zabota_updates_total", type="callback_query") - value(
        before, "zabota_updates_total", type="callback_query") == 3
    assert value(after, "zabota_decisions_total", decision="answer") - value(
        before, "zabota_decisions_total", decision="answer") == 1
    assert value(after, "zabota_search_seconds_count") - value(before, "zabota_search_seconds_count") == 1
    # The answer (with "did this help?" on it), the thanks, the survey; the other customer's hand-off notice.
    assert value(after, "zabota_messages_sent_total", method="sendMessage") == value(
        before, "zabota_messages_sent_total", method="sendMessage") + 4
    assert value(after, "zabota_messages_sent_total", method="editMessageText") >= 2  # the survey, edited in place
    assert value(after, "zabota_queue_length") == 1
    assert value(after, "zabota_tickets", state="waiting") == 1
    assert value(after, "zabota_queue_longest_wait_seconds") >= 0
    assert value(after, "zabota_csat_ratio") == 1.0 and value(after, "zabota_ces_mean") == 5.0
    assert value(after, "zabota_index_articles") >= 40
    assert value(after, "zabota_errors_total", kind="handler") == 0

    await running.say(EmulatedUser(id=AGENT_ID, first_name="Ольга", language_code="ru"), "/online")
    await running.say(EmulatedUser(id=AGENT_ID, first_name="Ольга", language_code="ru"), "/next")
    taken = await scrape(running.app.ops)
    assert value(taken, "zabota_tickets", state="waiting") == 0 and value(taken, "zabota_tickets", state="assigned") == 1
    assert value(taken, "zabota_agents_online") == 1


async def test_healthz_is_ok_while_redis_and_the_index_serve(running: Running) -> None:
    status, body = await health(running.app.ops)
    assert status == 200 and body["redis"] == "ok" and body["index"] == "ok"
    assert body["index_version"] == running.app.kb.index.version


async def test_healthz_fails_without_redis_or_without_an_index(
    tmp_path: Path, running: Running, encoder: Encoder
) -> None:
    gone = aioredis.Redis(unix_socket_path=str(tmp_path / "no-redis.sock"), socket_connect_timeout=0.2,
                          decode_responses=True, retry=Retry(NoBackoff(), 0))
    app = running.app
    ops = OpsEndpoints(app.metrics, gone, HandoffDesk(gone), SurveyService(gone), app.kb, timeout=1.0)
    status, body = await health(ops)
    assert status == 503 and body["status"] == "unhealthy" and body["redis"].startswith("unavailable")
    assert body["index"] == "ok"
    samples = await scrape(ops)  # the process's own counters still come out while Redis is down
    assert value(samples, "zabota_errors_total", kind="metrics_refresh") >= 1
    await gone.aclose()

    empty = build_knowledge_base(make_settings(tmp_path / "empty", "", ""), encoder)
    ops = OpsEndpoints(app.metrics, app.redis, app.desk, app.surveys, empty)
    status, body = await health(ops)
    assert status == 503 and body["redis"] == "ok" and body["index"].startswith("unavailable")


def test_personal_data_is_masked_in_logs() -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", "json", stream)
    try:
        log = logging.getLogger("zabota.test")
        log.info("customer wrote: %s", "мой номер +7 (999) 123-45-67, почта anna.k@mail.ru, карта 4111 1111 1111 1111")
        try:
            raise ValueError("cannot reach +380501234567")
        except ValueError:
            log.exception("relay failed for %s", "ivan@example.com")
    finally:
        logging.getLogger().removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "customer wrote: мой номер [phone], почта [email], карта [card *1111]"
    assert first["level"] == "INFO" and first["logger"] == "zabota.test"
    assert second["message"] == "relay failed for [email]"
    assert "ValueError: cannot reach [phone]" in second["exc"] and "380501234567" not in stream.getvalue()


def test_masking_leaves_order_numbers_dates_and_prices_alone() -> None:
    text = "Заказ 12345678 от 2026-11-20 на 1 500 ₽, доставка в 10:30, тикет T-42"
    assert mask_personal_data(text) == text
    assert mask_personal_data("звоните 8 999 123 45 67 или 123-45-67") == "звоните [phone] или [phone]"


def test_a_process_keeps_its_own_counters() -> None:
    first, second = Metrics(), Metrics()
    first.errors.labels("search").inc()
    assert b'zabota_errors_total{kind="search"} 1.0' in first.exposition()
    assert b'kind="search"' not in second.exposition()


def test_index_versions_and_ids_in_logs_are_not_taken_for_phones() -> None:
    line = "serving knowledge-base index version 20261123-003012-857286-1ec37bc2; update 100000123 from 6123456789"
    assert mask_personal_data(line) == line


def test_phones_are_masked_however_they_are_grouped() -> None:
    for phone in ("+7 9991234567", "8 9991234567", "+380 501234567", "+7-999-1234567", "(044) 1234567"):
        assert mask_personal_data(f"call {phone} now") == "call [phone] now", phone
    for kept in ("2026-11-22 10:30:00 started", "1 000 000 RUB"):
        assert mask_personal_data(kept) == kept


def test_a_bad_log_call_does_not_break_the_code_that_logs() -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", "json", stream)
    try:
        logging.getLogger("zabota.test").info("two values %s %s", "only one")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "two values" in stream.getvalue()


async def test_an_index_built_with_another_model_is_built_again_at_start(
    tmp_path: Path, prepared: Path, encoder: Encoder, clean_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A new KB_ENGINE, KB_QUANTIZE or model version: the old index's vectors mean nothing to the new encoder."""
    data = tmp_path / "data"
    shutil.copytree(prepared, data, ignore=shutil.ignore_patterns("redis"))
    store = IndexStore(data / "kb")
    old = store.current_version()
    assert old is not None
    manifest = store.version_dir(old) / "manifest.json"
    written = json.loads(manifest.read_text(encoding="utf-8"))
    manifest.write_text(json.dumps({**written, "model_id": "another-model"}), encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="bot.factory"):
        app = await build_application(make_settings(data, clean_redis, ""), encoder=encoder, telegram=False)
    try:
        assert store.current_version() != old
        assert "was built with another-model" in caplog.text
        customer = Customer(chat_id=1701, user_id=1701, name="Анна", language_code="ru")
        [answer] = await app.dialog.text(customer, "Как отменить заказ?")
        assert answer.text.startswith("<b>Как отменить заказ?</b>")  # answered, not "something went wrong"
    finally:
        await app.close()

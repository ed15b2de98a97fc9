"""The survey store on a real Redis: who is surveyed, which taps count, and what the reports say."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest

from surveys import Question, SurveyService, SurveyTrigger, TapOutcome, build_report, export_csv, render_chart
from tests.conftest import Clock

DAY = 86400.0


async def open_survey(service: SurveyService, chat: int, dialog: str, trigger: SurveyTrigger = SurveyTrigger.AGENT_CLOSED, **kw):  # type: ignore[no-untyped-def]
    return await service.open(trigger=trigger, chat_id=chat, user_id=chat, lang="ru", dialog=dialog, **kw)


async def test_one_survey_per_dialog_and_per_customer_within_the_fatigue_period(redis) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    service = SurveyService(redis, fatigue_seconds=7 * DAY, clock=clock)
    first = await open_survey(service, 1, "ticket:T1")
    assert first is not None and first.questions == [Question.CSAT, Question.CES]
    assert await open_survey(service, 1, "ticket:T1") is None  # the same dialog again
    assert await open_survey(service, 1, "answer:abc", SurveyTrigger.BOT_HELPED) is None  # too soon for him
    assert await open_survey(service, 2, "answer:def", SurveyTrigger.BOT_HELPED) is not None  # someone else
    clock.now += 8 * DAY
    later = await open_survey(service, 1, "answer:xyz", SurveyTrigger.BOT_HELPED)
    assert later is not None and later.questions == [Question.CES, Question.CSAT]  # effort first for self-service


async def test_only_the_surveyed_customers_first_tap_counts(redis) -> None:  # type: ignore[no-untyped-def]
    service = SurveyService(redis)
    survey = await open_survey(service, 10, "ticket:T9")
    assert survey is not None
    assert (await service.tap(survey.id, 99, "csat", 5)).outcome is TapOutcome.NOT_YOURS  # forged: another user
    assert (await service.tap(survey.id, 10, "csat", 9)).outcome is TapOutcome.UNKNOWN  # out of the 1-5 scale
    assert (await service.tap(survey.id, 10, "nps", 9)).outcome is TapOutcome.UNKNOWN  # not asked in this survey
    assert (await service.tap("no-such-id", 10, "csat", 5)).outcome is TapOutcome.UNKNOWN
    accepted = await service.tap(survey.id, 10, "csat", 2)
    assert accepted.outcome is TapOutcome.ACCEPTED and accepted.became_low
    replay = await service.tap(survey.id, 10, "csat", 5)  # a double tap or a replayed callback
    assert replay.outcome is TapOutcome.REPEATED and not replay.became_low
    stored = await service.get(survey.id)
    assert stored is not None and stored.answers == {"csat": 2} and stored.next_question is Question.CES


async def test_a_tap_after_expiry_changes_nothing(redis) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    service = SurveyService(redis, expiry_seconds=3600, clock=clock)
    survey = await open_survey(service, 11, "ticket:T10")
    assert survey is not None
    clock.now += 3601
    assert (await service.tap(survey.id, 11, "csat", 5)).outcome is TapOutcome.EXPIRED
    assert (await service.get(survey.id)).answers == {}  # type: ignore[union-attr]


async def test_nps_is_asked_at_most_once_per_period_when_enabled(redis) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    service = SurveyService(redis, fatigue_seconds=0, nps_enabled=True, nps_period_seconds=90 * DAY, clock=clock)
    first = await open_survey(service, 12, "ticket:T11")
    clock.now += 1
    second = await open_survey(service, 12, "ticket:T12")
    assert first is not None and Question.NPS in first.questions
    assert second is not None and Question.NPS not in second.questions


async def test_a_customer_who_blocked_the_bot_is_not_surveyed(redis) -> None:  # type: ignore[no-untyped-def]
    service = SurveyService(redis, fatigue_seconds=0)
    survey = await open_survey(service, 13, "ticket:T13")
    assert survey is not None
    await service.not_delivered(survey, blocked=True)
    assert await service.get(survey.id) is None
    assert await open_survey(service, 13, "ticket:T14") is None
    await service.set_blocked(13, False)
    assert await open_survey(service, 13, "ticket:T15") is not None


async def test_reports_match_hand_computed_figures(redis) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(1_800_000_000.0)
    service = SurveyService(redis, fatigue_seconds=0, clock=clock)
    # (agent, article, lang, csat, ces); None: not answered
    answers = [
        ("Анна", "cancel-order", "ru", 5, 5),
        ("Анна", "cancel-order", "ru", 4, 3),
        ("Борис", "delivery-cost", "uk", 2, 1),
        ("Борис", "delivery-cost", "en", None, None),
        ("", "delivery-cost", "ru", 3, 4),
    ]
    for number, (agent, article, lang, csat, ces) in enumerate(answers):
        survey = await service.open(trigger=SurveyTrigger.AGENT_CLOSED if agent else SurveyTrigger.BOT_HELPED,
                                    chat_id=100 + number, user_id=100 + number, lang=lang, dialog=f"d{number}",
                                    agent_name=agent, articles=[article])
        assert survey is not None
        if csat is not None:
            await service.tap(survey.id, 100 + number, "csat", csat)
        if ces is not None:
            await service.tap(survey.id, 100 + number, "ces", ces)
        clock.now += DAY
    report = build_report(await service.surveys(0), 0, clock.now)
    overall = report.overall
    assert (overall.sent, overall.answered) == (5, 4)
    assert overall.response_rate == 0.8
    assert overall.csat == 0.5  # 5 and 4 of [5, 4, 2, 3]
    assert overall.ces == pytest.approx((5 + 3 + 1 + 4) / 4, abs=1e-3)
    assert overall.ces_distribution == {1: 1, 2: 0, 3: 1, 4: 1, 5: 1}
    assert overall.low_scores == 1
    assert report.by_agent["Анна"].csat == 1.0 and report.by_agent["Борис"].csat == 0.0
    assert report.by_agent["bot"].ces == 4.0
    assert report.by_article["delivery-cost"].sent == 3
    assert report.by_lang["uk"].ces == 1.0
    assert len(report.by_day) == 5

    rows = list(csv.DictReader(io.StringIO(export_csv(await service.surveys(0)))))
    assert [r["csat"] for r in rows] == ["5", "4", "2", "", "3"]
    assert rows[2]["agent_name"] == "Борис" and rows[2]["articles"] == "delivery-cost"
    png = render_chart(report)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


async def test_zabota_stats_and_export_show_the_stored_answers(redis, clean_redis, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from bot.cli import main

    service = SurveyService(redis)
    answers = [("Ольга", 5, 4), ("Ольга", 2, 1), ("Иван", 4, 5)]
    for n, (agent, csat, ces) in enumerate(answers):
        survey = await open_survey(service, 100 + n, f"ticket:T{n}", agent_id=7000 + n, agent_name=agent)
        assert survey is not None
        await service.tap(survey.id, 100 + n, "csat", csat)
        await service.tap(survey.id, 100 + n, "ces", ces)
    await open_survey(service, 200, "ticket:T9", agent_name="Иван")  # sent, never answered
    monkeypatch.setenv("REDIS_URL", clean_redis)

    assert await asyncio.to_thread(main, ["stats", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["overall"]["sent"] == 4 and report["overall"]["answered"] == 3
    assert report["overall"]["csat"] == round(2 / 3, 4) and report["overall"]["ces"] == round(10 / 3, 3)
    assert report["by_agent"]["Ольга"]["csat"] == 0.5 and report["by_agent"]["Иван"]["response_rate"] == 0.5

    assert await asyncio.to_thread(main, ["stats"]) == 0
    table = capsys.readouterr().out
    assert "CSAT: share of 4-5 answers" in table
    assert any(line.startswith("all ") and " 67% " in line for line in table.splitlines())

    assert await asyncio.to_thread(main, ["surveys", "export"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted((r["agent_name"], r["csat"], r["ces"]) for r in rows) == [
        ("Иван", "", ""), ("Иван", "4", "5"), ("Ольга", "2", "1"), ("Ольга", "5", "4")]

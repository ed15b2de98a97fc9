"""`zabota kb eval` on a small knowledge base and questions whose right answers are known."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kb_index import DecisionThresholds, EmbeddingCache, Encoder
from kb_index.evaluation import EvalOptions, EvalQuery, Outcome, calibrate, compute_metrics, evaluate
from tests.conftest import MODEL_CACHE, REPO

KB = [
    {"id": "track", "question": "Как отследить заказ?", "questions": ["где мой заказ"], "answer": "Откройте раздел «Мои заказы» и нажмите на номер заказа, там будет трек-номер.", "lang": "ru"},
    {"id": "return", "question": "Как вернуть товар?", "questions": [], "answer": "Вернуть товар можно в течение 14 дней в любом пункте выдачи.", "lang": "ru"},
    {"id": "pay", "question": "Какие способы оплаты есть?", "questions": ["чем можно заплатить"], "answer": "Картой онлайн, наличными или картой курьеру.", "lang": "ru"},
    {"id": "warranty", "question": "Какая гарантия на технику?", "questions": [], "answer": "Гарантия на технику — 12 месяцев с даты получения.", "lang": "ru"},
]
QUERIES = [
    {"query": "подскажите где сейчас моя посылка", "expected": ["track"], "lang": "ru"},
    {"query": "Как повернути товар?", "expected": ["return"], "lang": "uk"},
    {"query": "How can I pay for my order?", "expected": ["pay"], "lang": "en"},
    {"query": "сколько действует гарантия на чайник", "expected": ["warranty"], "lang": "ru"},
    {"query": "Какой курс доллара на завтра?", "expected": [], "lang": "ru"},
    {"query": "What's the weather in London?", "expected": [], "lang": "en"},
]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_metrics_are_computed_as_defined() -> None:
    queries = [
        EvalQuery("a", ("1",)),
        EvalQuery("b", ("2",)),
        EvalQuery("c", ("3",)),
        EvalQuery("d", ()),
    ]
    outcomes = [
        Outcome(("1", "2"), (0.95, 0.70)),  # right, answered
        Outcome(("1", "2"), (0.90, 0.85)),  # wrong first, second at rank 2, answered (wrongly)
        Outcome(("1", "2"), (0.75, 0.70)),  # not in the ranking, handed off
        Outcome(("1",), (0.70,)),  # out of scope, handed off
    ]
    metrics = compute_metrics(queries, outcomes, DecisionThresholds(answer=0.88, clarify=0.8))
    assert metrics["top1"] == pytest.approx(1 / 3, abs=1e-4)
    assert metrics["recall_at_3"] == pytest.approx(2 / 3, abs=1e-4)
    assert metrics["mrr"] == pytest.approx((1 + 0.5) / 3, abs=1e-4)
    assert metrics["answered_accuracy"] == 0.5
    assert metrics["handoff_precision"] == 0.5
    assert metrics["handoff_recall"] == 1.0
    assert metrics["handoff_f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert metrics["auroc"] == 1.0  # every in-scope question is more confident than the out-of-scope one
    assert metrics["decisions"] == {"answer": 2, "clarify": 0, "handoff": 2}


def test_calibration_picks_the_level_that_separates_validation_questions() -> None:
    queries = [EvalQuery("a", ("1",)), EvalQuery("b", ("1",)), EvalQuery("c", ()), EvalQuery("d", ())]
    outcomes = [Outcome(("1",), (0.91,)), Outcome(("1",), (0.88,)), Outcome(("1",), (0.80,)), Outcome(("1",), (0.76,))]
    chosen = calibrate(queries, outcomes, DecisionThresholds(answer=0.9, clarify=0.5))
    assert 0.80 < chosen.clarify <= 0.88
    assert compute_metrics(queries, outcomes, chosen)["handoff_f1"] == 1.0


def test_evaluate_on_a_small_file_pair(
    tmp_path: Path, encoder: Encoder, thresholds: DecisionThresholds, embedding_cache: EmbeddingCache
) -> None:
    kb = write_jsonl(tmp_path / "kb.jsonl", KB)
    queries = write_jsonl(tmp_path / "queries.jsonl", QUERIES)
    options = EvalOptions(thresholds, calibrate_on=queries)
    result = evaluate(encoder, kb, queries, options, cache=embedding_cache, workdir=tmp_path / "w")
    assert (result["queries"], result["in_scope"], result["out_of_scope"]) == (6, 4, 2)
    assert result["top1"] == 1.0
    assert result["auroc"] == 1.0  # every answerable question is more confident than the two others...
    assert result["handoff_recall"] == 1.0 and result["handoff_precision"] == 1.0  # ...so calibration splits them
    assert result["thresholds"]["chosen_on"] == str(queries)  # type: ignore[index]
    assert set(result["by_lang"]) == {"ru", "uk", "en"}  # type: ignore[arg-type]
    assert result["by_lang"]["uk"]["top1"] == 1.0  # type: ignore[index]


def test_learned_phrasings_are_measured_on_the_other_fold(
    tmp_path: Path, encoder: Encoder, thresholds: DecisionThresholds, embedding_cache: EmbeddingCache
) -> None:
    kb = write_jsonl(tmp_path / "kb.jsonl", KB)
    queries = write_jsonl(tmp_path / "queries.jsonl", QUERIES * 2)  # each question's twin is in the other fold
    options = EvalOptions(thresholds, learn_folds=2)
    result = evaluate(encoder, kb, queries, options, cache=embedding_cache, workdir=tmp_path / "w")
    assert result["top1"] == 1.0
    assert result["setup"]["learn_folds"] == 2  # type: ignore[index]


@pytest.mark.slow
def test_the_eval_command_prints_one_json_object(tmp_path: Path) -> None:
    kb = write_jsonl(tmp_path / "kb.jsonl", KB)
    queries = write_jsonl(tmp_path / "queries.jsonl", QUERIES[:4])
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "kb", "eval", "--kb", str(kb), "--queries", str(queries), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"ZABOTA_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
             "ZABOTA_CACHE_DIR": str(MODEL_CACHE)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in ("queries", "in_scope", "out_of_scope", "top1", "recall_at_3", "mrr", "answered_accuracy",
                "handoff_precision", "handoff_recall", "handoff_f1", "auroc", "by_lang"):
        assert key in result
    assert result["handoff_f1"] is None and result["auroc"] is None  # no out-of-scope questions in this file
    assert result["top1"] == 1.0


@pytest.mark.slow
def test_a_broken_queries_file_is_reported_with_its_line(tmp_path: Path) -> None:
    kb = write_jsonl(tmp_path / "kb.jsonl", KB)
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"query": "где заказ", "expected": ["track"]}\n{"query": 5}\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "kb", "eval", "--kb", str(kb), "--queries", str(queries)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"ZABOTA_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
             "ZABOTA_CACHE_DIR": str(MODEL_CACHE)},
        check=False,
    )
    assert done.returncode == 2
    assert f"{queries}:2: is not a query line" in done.stderr

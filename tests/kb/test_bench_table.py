"""`zabota bench search --engines ...` prints the engines side by side, so a ratio is read off one table."""

from __future__ import annotations

import pytest

from bot.cli import _bench_table, main
from kb_index.bench import engine_settings


def test_the_engines_are_rows_of_one_table_with_their_speed_up_over_the_first() -> None:
    results = [
        {"engine": "torch", "served_on": "torch", "articles": 300, "latency_p50_ms": 20.0, "load_s": 5.5},
        {"engine": "onnx-int8", "served_on": "onnx", "articles": 300, "latency_p50_ms": 5.0, "load_s": 0.9},
        {"engine": "onnx", "served_on": "torch", "articles": 300, "latency_p50_ms": 20.0, "load_s": 6.0},
    ]
    lines = _bench_table(results).splitlines()
    header = [cell.strip() for cell in lines[0].split("|")]
    rows = [dict(zip(header, (cell.strip() for cell in line.split("|")))) for line in lines[2:]]
    assert [row["engine"] for row in rows] == ["torch", "onnx-int8", "onnx (on torch!)"]
    assert [row["p50 speed-up"] for row in rows] == ["1.0x", "4.0x", "1.0x"]
    assert rows[1]["load s"] == "0.9"


def test_engine_names_stand_for_the_settings_they_run_with() -> None:
    assert engine_settings("onnx-int8") == ("onnx", "int8")
    assert engine_settings("torch") == ("torch", "none")
    with pytest.raises(ValueError, match="choose from torch, torch-int8, onnx, onnx-int8"):
        engine_settings("tensorrt")


def test_an_unknown_engine_is_refused_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "search", "--sizes", "300", "--engines", "torch,onnx-fp16"]) == 2
    assert "unknown engine 'onnx-fp16'" in capsys.readouterr().err

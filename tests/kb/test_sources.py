"""An admin's knowledge-base files: every format loads, and every mistake is reported with file and line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kb_index import KbSourceError, load_articles
from tests.conftest import SAMPLE_KB


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


MARKDOWN = """---
id: order-tracking
title: Как отследить заказ?
questions:
  - Где мой заказ?
  - трек номер где
tags: [orders, delivery]
---
Откройте **«Мои заказы»** и нажмите на заказ.
"""


def problems_of(source: Path) -> list[str]:
    with pytest.raises(KbSourceError) as caught:
        load_articles(source)
    return [str(p) for p in caught.value.problems]


def test_markdown_article_takes_its_language_from_the_folder(tmp_path: Path) -> None:
    write(tmp_path / "ru" / "order-tracking.md", MARKDOWN)
    [article] = load_articles(tmp_path)
    assert article.id == "order-tracking"
    assert article.lang == "ru"
    assert article.title == "Как отследить заказ?"
    assert article.questions == ("Где мой заказ?", "трек номер где")
    assert article.tags == ("orders", "delivery")
    assert article.answer.startswith("Откройте **«Мои заказы»**")


def test_csv_with_optional_columns_and_a_multiline_answer(tmp_path: Path) -> None:
    write(
        tmp_path / "faq.csv",
        'question,answer,id,lang,tags\n"Сколько стоит доставка?","Курьером — 299 ₽.\nБесплатно от 3000 ₽.",delivery-cost,ru,delivery;payment\n'
        "How long is delivery?,Two to five days.,,en,\n",
    )
    first, second = load_articles(tmp_path)
    assert (first.id, first.lang, first.tags) == ("delivery-cost", "ru", ("delivery", "payment"))
    assert "Бесплатно от 3000 ₽." in first.answer
    assert second.id.startswith("faq-")  # derived from the question, stable when rows move
    assert second.source is not None and second.source.line == 4


def test_csv_rows_may_list_more_ways_to_ask(tmp_path: Path) -> None:
    write(
        tmp_path / "faq.csv",
        'question,questions,answer\n'
        '"Где мой заказ?","Когда привезут заказ?\nзаказ не пришёл",Статус — в «Моих заказах».\n'
        "Как вернуть товар?,возврат | хочу сдать покупку||,В течение 14 дней.\n"
        "Есть ли самовывоз?,,Да: из любого магазина.\n",
    )
    by_title = {a.title: a.questions for a in load_articles(tmp_path)}
    assert by_title == {
        "Где мой заказ?": ("Когда привезут заказ?", "заказ не пришёл"),  # one per line of the cell
        "Как вернуть товар?": ("возврат", "хочу сдать покупку"),  # or "|" between them; empty ones dropped
        "Есть ли самовывоз?": (),
    }


def test_jsonl_in_the_evaluation_format(tmp_path: Path) -> None:
    line = {"id": "7", "question": "Как вернуть товар?", "questions": ["возврат"], "answer": "В течение 14 дней.", "lang": "ru"}
    write(tmp_path / "kb.jsonl", json.dumps(line, ensure_ascii=False) + "\n\n")
    [article] = load_articles(tmp_path / "kb.jsonl")
    assert (article.id, article.questions, article.answer) == ("7", ("возврат",), "В течение 14 дней.")


def test_a_folder_may_mix_formats_and_skips_other_files(tmp_path: Path) -> None:
    write(tmp_path / "ru" / "a.md", MARKDOWN)
    write(tmp_path / "more.csv", "question,answer\nКак оплатить?,Картой или при получении.\n")
    write(tmp_path / "notes.txt", "not an article")
    write(tmp_path / "README.md", "# how to edit this knowledge base")
    write(tmp_path / ".drafts" / "b.md", "broken")
    assert sorted(a.title for a in load_articles(tmp_path)) == ["Как оплатить?", "Как отследить заказ?"]


def test_the_shipped_sample_has_every_article_in_three_languages() -> None:
    articles = load_articles(SAMPLE_KB)
    by_lang: dict[str, set[str]] = {}
    for article in articles:
        by_lang.setdefault(article.lang, set()).add(article.id)
    assert set(by_lang) == {"ru", "uk", "en"}
    assert len(by_lang["ru"]) >= 40
    assert by_lang["ru"] == by_lang["uk"] == by_lang["en"]


def test_every_problem_is_reported_at_once_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "ru" / "one.md", MARKDOWN)
    write(tmp_path / "ru" / "two.md", MARKDOWN.replace("Откройте", "Смотрите"))  # same id and language
    write(tmp_path / "ru" / "empty.md", "---\nid: empty\ntitle: Пусто?\n---\n\n")
    write(tmp_path / "ru" / "unknown.md", "---\nid: x\ntitle: Вопрос?\ncolour: red\n---\nОтвет.\n")
    write(tmp_path / "ru" / "latin1.md", "---\nid: y\ntitle: Caf\xe9?\n---\nText\n".encode("latin-1"))
    write(tmp_path / "bad.jsonl", '{"id": "1", "question": "q", "answer": "a"}\n{"id": "2", "question": "q"\n')
    write(tmp_path / "bad.csv", "question,answer,colour\nq,a,red\n")

    problems = problems_of(tmp_path)
    text = "\n".join(problems)
    assert f"{tmp_path / 'ru' / 'one.md'}:1: duplicate article id 'order-tracking' (ru)" in text
    assert f"{tmp_path / 'ru' / 'two.md'}:1: duplicate article id 'order-tracking' (ru)" in text
    assert f"{tmp_path / 'ru' / 'empty.md'}:5: the answer is empty" in text
    assert f"{tmp_path / 'ru' / 'unknown.md'}:4: unknown field 'colour'" in text
    assert f"{tmp_path / 'ru' / 'latin1.md'}:3: is not valid UTF-8" in text
    assert f"{tmp_path / 'bad.jsonl'}:2: is not valid JSON" in text
    assert f"{tmp_path / 'bad.csv'}:1: unknown column 'colour'" in text
    assert len(problems) == 7


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file regardless of its permissions")
def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "ru" / "secret.md", MARKDOWN)
    path.chmod(0)
    try:
        assert problems_of(tmp_path) == [f"{path}: cannot be read (Permission denied): check the file's permissions"]
    finally:
        path.chmod(0o644)


def test_an_unreadable_path_inside_the_folder_is_reported(tmp_path: Path) -> None:
    # A dangling link is what an unreadable file looks like to root, who ignores permissions.
    write(tmp_path / "ru" / "ok.md", MARKDOWN)
    (tmp_path / "ru" / "gone.md").symlink_to(tmp_path / "nowhere.md")
    (tmp_path / "ru" / "folder.md").mkdir()
    [problem] = problems_of(tmp_path)
    assert problem.startswith(f"{tmp_path / 'ru' / 'gone.md'}: cannot be read")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("no-front.md", "Просто текст\n", ":1: has no front matter"),
        ("unclosed.md", "---\nid: a\ntitle: b\n", ":1: the front matter is not closed"),
        ("yaml.md", "---\nid: a\ntitle: [b\n---\nx\n", "the front matter is not valid YAML"),
        ("noid.md", "---\ntitle: Вопрос?\n---\nОтвет\n", ":2: 'id' is missing"),
        ("spaces.md", "---\nid: my article\ntitle: Вопрос?\n---\nОтвет\n", "has spaces or is too long"),
        ("lang.md", "---\nid: a\ntitle: Вопрос?\nlang: russian\n---\nОтвет\n", ":4: 'lang' 'russian' is not a two-letter"),
        ("questions.md", "---\nid: a\ntitle: Вопрос?\nquestions: одна строка\n---\nОтвет\n", ":4: 'questions' must be a list"),
        ("empty.csv", "", ":1: is empty"),
        ("noanswer.csv", "question\nq\n", ":1: the column 'answer' is missing"),
        ("cells.csv", "question,answer\nq,a,extra\n", ":2: has 3 cells where the header has 2"),
        ("blank.csv", "question,answer\nq,\n", ":2: the answer is empty"),
        ("fields.jsonl", '{"id": "1", "question": "q", "answer": "a", "extra": 1}\n', ":1: unknown field 'extra'"),
        ("missing.jsonl", '{"question": "q", "answer": "a"}\n', ":1: the field 'id' is missing"),
        ("array.jsonl", "[1, 2]\n", ":1: must be a JSON object"),
    ],
)
def test_each_kind_of_mistake_says_what_to_fix(tmp_path: Path, name: str, content: str, expected: str) -> None:
    write(tmp_path / name, content)
    [problem] = problems_of(tmp_path)
    assert problem.startswith(str(tmp_path / name))
    assert expected in problem


def test_an_empty_or_missing_source_is_refused(tmp_path: Path) -> None:
    assert problems_of(tmp_path) == [f"{tmp_path}: no articles found: add .md, .csv or .jsonl files with at least one article"]
    assert problems_of(tmp_path / "nope") == [f"{tmp_path / 'nope'}: does not exist: check the KB_SOURCE path"]

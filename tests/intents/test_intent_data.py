"""Training data in Rasa NLU format: what ships with Zabota, and how an admin's mistakes are reported."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from intents import INTENTS, QUESTION, IntentDataError, TrainingExample, load_nlu
from intents.nlu import examples_digest


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_data_covers_every_intent_in_every_language(shipped_examples: list[TrainingExample]) -> None:
    counts = Counter((example.lang, example.intent) for example in shipped_examples)
    for lang in ("ru", "uk", "en"):
        for intent in INTENTS:
            least = 80 if intent == QUESTION else 30
            assert counts[(lang, intent)] >= least, (lang, intent, counts[(lang, intent)])


def test_ukrainian_data_is_written_in_ukrainian(shipped_examples: list[TrainingExample]) -> None:
    ukrainian = " ".join(example.text for example in shipped_examples if example.lang == "uk").lower()
    assert not set("ыэъё") & set(ukrainian)
    assert ukrainian.count("і") > 200


def test_examples_come_with_their_file_line_and_language(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "nlu_uk.yml",
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - привіт\n    - вітаю\n'
        "- intent: question\n  examples: |\n    - де моє замовлення\n",
    )

    examples = load_nlu(path)

    assert examples == [
        TrainingExample("привіт", "greet", "uk"),
        TrainingExample("вітаю", "greet", "uk"),
        TrainingExample("де моє замовлення", "question", "uk"),
    ]
    assert [example.source for example in examples] == [f"{path}:5", f"{path}:6", f"{path}:9"]


def test_a_language_argument_serves_files_named_without_one(tmp_path: Path) -> None:
    path = write(tmp_path, "smalltalk.yml", "nlu:\n- intent: greet\n  examples: |\n    - hello\n")

    assert load_nlu([path], lang="en") == [TrainingExample("hello", "greet", "en")]
    with pytest.raises(IntentDataError, match="cannot tell the language"):
        load_nlu([path])


def test_entity_annotations_are_reduced_to_what_the_customer_typed(tmp_path: Path) -> None:
    path = write(tmp_path, "nlu_ru.yml", "nlu:\n- intent: question\n  examples: |\n    - доставка в [Казань](city)?\n")

    assert [example.text for example in load_nlu(path)] == ["доставка в Казань?"]


def test_broken_yaml_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "nlu_ru.yml", "nlu:\n- intent: greet\n  examples: |\n    - привет\n  - intent: [oops\n")

    with pytest.raises(IntentDataError) as caught:
        load_nlu(path)

    [problem] = caught.value.problems
    assert problem.path == str(path)
    assert problem.line == 5
    assert "not valid YAML" in str(caught.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "nlu_ru.yml",
        'version: "3.1"\n'
        "responses:\n  utter_greet: []\n"
        "nlu:\n"
        "- intent: greet\n"
        "- intent: thanks\n  examples: |\n    - спасибо\n    спасибо большое\n"
        "- synonym: доставка\n  examples: |\n    - привоз\n",
    )

    with pytest.raises(IntentDataError) as caught:
        load_nlu(path)

    problems = [(problem.line, problem.message) for problem in caught.value.problems]
    assert len(problems) == 4
    assert problems[0][0] == 2 and "unknown top-level key 'responses'" in problems[0][1]  # a domain-file key
    assert problems[1][0] == 5 and "'greet' has no 'examples'" in problems[1][1]
    assert problems[2][0] == 9 and "must start with '- '" in problems[2][1]
    assert problems[3][0] == 10 and "'synonym' items are not supported" in problems[3][1]
    assert str(path) in str(caught.value)


def test_one_text_under_two_intents_is_a_conflict_to_resolve(tmp_path: Path) -> None:
    first = write(tmp_path, "a_ru.yml", "nlu:\n- intent: affirm\n  examples: |\n    - ок\n")
    second = write(tmp_path, "b_ru.yml", "nlu:\n- intent: thanks\n  examples: |\n    - Ок\n")

    with pytest.raises(IntentDataError, match=r"labelled 'thanks' here but 'affirm'"):
        load_nlu([first, second])


def test_the_data_hash_follows_what_the_examples_say_not_their_order() -> None:
    a = TrainingExample("привет", "greet", "ru")
    b = TrainingExample("пока", "goodbye", "ru")

    assert examples_digest([a, b]) == examples_digest([b, a])
    assert examples_digest([a, b]) != examples_digest([a, TrainingExample("пока", "cancel", "ru")])

"""Read intent training data written in Rasa's NLU YAML format, and refuse it whole if anything is wrong.

One file per language, named ``<anything>_<lang>.yml`` (``nlu_ru.yml``), or any name with ``lang=`` given::

    version: "3.1"
    nlu:
    - intent: greet
      examples: |
        - привет
        - добрый день

Only ``intent`` items are read (``synonym``, ``regex`` and ``lookup`` items serve entity extraction, which Zabota
does not do, and are reported rather than silently skipped); entity annotations such as ``[Москва](city)`` are
reduced to their text. Every problem in every file is collected first, so a file is fixed in one pass.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from intents.errors import DataProblem, IntentDataError

__all__ = [
    "DEFAULT_DATA_DIR",
    "INTENTS",
    "QUESTION",
    "TrainingExample",
    "default_examples",
    "examples_digest",
    "load_nlu",
]

DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"
QUESTION = "question"  # "send it to the knowledge base"; also the answer whenever the classifier is unsure
INTENTS = (
    "greet",
    "thanks",
    "goodbye",
    "ask_human",
    "affirm",
    "deny",
    "complaint",
    "bot_challenge",
    "help",
    "cancel",
    QUESTION,
)

_TOP_LEVEL_KEYS = ("version", "nlu")
_ITEM_KEYS = ("intent", "examples", "metadata")
_ENTITY_ITEM_KEYS = ("synonym", "regex", "lookup")
_LANG = re.compile(r"^[a-z]{2}$")
_FILE_LANG = re.compile(r"[_.-]([a-z]{2})$")
# [text](entity), [text]{"entity": ...} and [text][{...}] as Rasa writes them; the text is what a person typed.
_ENTITY = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\}|\[[^\]]*\])")
_SUFFIXES = (".yml", ".yaml")
# libyaml's loader when PyYAML was built with it; both keep line numbers on the composed nodes.
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Report = Callable[[int, str], None]  # (line, message)


@dataclass(frozen=True)
class TrainingExample:
    """One way a customer says something, the intent it expresses, and its language."""

    text: str
    intent: str
    lang: str
    source: str = field(default="", compare=False)  # "path:line", for messages about the data


def load_nlu(paths: Path | str | Iterable[Path | str], *, lang: str | None = None) -> list[TrainingExample]:
    """Every example in ``paths`` (files, or folders searched for ``*.yml``/``*.yaml``), in file order.

    The language of a file comes from ``lang`` when given, else from its name's suffix (``nlu_uk.yml``).
    Raises ``IntentDataError`` listing every problem (file and line) when anything is wrong.
    """
    if lang is not None and not _LANG.match(lang):
        raise ValueError(f"lang must be a two-letter language code such as 'ru', got {lang!r}")
    problems: list[DataProblem] = []
    files = _expand([paths] if isinstance(paths, (str, Path)) else paths, problems)
    examples: list[TrainingExample] = []
    for path in files:
        examples.extend(_read_file(path, lang, problems))
    problems.extend(_conflicts(examples))
    if problems:
        raise IntentDataError(problems)
    return examples


def default_examples() -> list[TrainingExample]:
    """The training data shipped with Zabota (``intents/data/nlu_*.yml``)."""
    return load_nlu(DEFAULT_DATA_DIR)


def examples_digest(examples: Sequence[TrainingExample]) -> str:
    """A hash of what the examples say, whatever their order, comments or layout: a new value means retrain."""
    digest = hashlib.sha256()
    for example in sorted(examples, key=lambda e: (e.lang, e.intent, e.text)):
        digest.update(f"{example.lang}\x1f{example.intent}\x1f{example.text}\x1e".encode())
    return digest.hexdigest()


def _expand(paths: Iterable[Path | str], problems: list[DataProblem]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
            if not found:
                problems.append(DataProblem(str(path), 0, "no *.yml or *.yaml training-data file in this folder"))
            files.extend(found)
        else:
            files.append(path)
    if not files and not problems:
        problems.append(DataProblem("(no paths)", 0, "no training-data file was given"))
    return files


def _read_file(path: Path, lang: str | None, problems: list[DataProblem]) -> list[TrainingExample]:
    name = str(path)

    def problem(line: int, message: str) -> None:
        problems.append(DataProblem(name, line, message))

    if lang is None:
        match = _FILE_LANG.search(path.stem)
        if match is None:
            problem(0, "cannot tell the language: name the file like nlu_ru.yml, or pass lang=")
            return []
        lang = match.group(1)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem(0, "no such file")
        return []
    except (OSError, UnicodeDecodeError) as exc:
        problem(0, f"cannot read the file ({exc}); training data must be UTF-8 text")
        return []
    try:
        root = yaml.compose(text, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        problem(mark.line + 1 if mark is not None else 0, f"not valid YAML: {reason}")
        return []
    if root is None:
        problem(0, "the file is empty; it needs a top-level 'nlu:' list")
        return []
    if not isinstance(root, yaml.MappingNode):
        problem(_line(root), "the top level must be a mapping with 'version' and 'nlu'")
        return []

    examples: list[TrainingExample] = []
    seen_nlu = False
    for key_node, value_node in root.value:
        key = key_node.value
        if key not in _TOP_LEVEL_KEYS:
            problem(_line(key_node), f"unknown top-level key {key!r}; only {', '.join(_TOP_LEVEL_KEYS)} are read here")
        elif key == "version":
            if not isinstance(value_node, yaml.ScalarNode) or not value_node.value:
                problem(_line(value_node), 'version must be a string such as "3.1"')
        else:
            seen_nlu = True
            if not isinstance(value_node, yaml.SequenceNode):
                problem(_line(value_node), "'nlu' must be a list of '- intent: ...' items")
                continue
            for item in value_node.value:
                examples.extend(_read_item(item, name, lang, problem))
    if not seen_nlu:
        problem(0, "no top-level 'nlu:' list")
    return examples


def _read_item(item: yaml.Node, name: str, lang: str, problem: _Report) -> list[TrainingExample]:
    if not isinstance(item, yaml.MappingNode):
        problem(_line(item), "each 'nlu' item must be a mapping with 'intent' and 'examples'")
        return []
    fields: dict[str, yaml.Node] = {}
    for key_node, value_node in item.value:
        key = key_node.value
        if key in _ENTITY_ITEM_KEYS:
            problem(_line(key_node), f"'{key}' items are not supported: intent training data has only 'intent' items")
            return []
        if key not in _ITEM_KEYS:
            problem(_line(key_node), f"unknown key {key!r} in an intent item; expected {', '.join(_ITEM_KEYS)}")
            continue
        fields[key] = value_node
    intent_node = fields.get("intent")
    if intent_node is None:
        problem(_line(item), "this item has no 'intent'")
        return []
    intent = intent_node.value.strip() if isinstance(intent_node, yaml.ScalarNode) else ""
    if not intent:
        problem(_line(intent_node), "'intent' must be a name such as greet")
        return []
    examples_node = fields.get("examples")
    if examples_node is None:
        problem(_line(item), f"intent {intent!r} has no 'examples'")
        return []
    if not isinstance(examples_node, yaml.ScalarNode):
        problem(_line(examples_node), f"'examples' of {intent!r} must be a block of '- ' lines (examples: |)")
        return []

    # A block scalar (`|`) starts on the line after its indicator; a plain or quoted one on its own line.
    first_line = _line(examples_node) + (1 if examples_node.style in ("|", ">") else 0)
    examples: list[TrainingExample] = []
    for offset, raw in enumerate(examples_node.value.split("\n")):
        stripped = raw.strip()
        if not stripped:
            continue
        line = first_line + offset
        if not stripped.startswith("-"):
            problem(line, f"an example must start with '- ' (intent {intent!r}): {stripped[:60]!r}")
            continue
        text = _ENTITY.sub(r"\1", stripped[1:]).strip()
        if not text:
            problem(line, f"an empty example in intent {intent!r}")
            continue
        examples.append(TrainingExample(text, intent, lang, f"{name}:{line}"))
    if not examples_node.value.strip():
        problem(_line(examples_node), f"intent {intent!r} has no examples")
    return examples


def _conflicts(examples: Sequence[TrainingExample]) -> list[DataProblem]:
    """One text under two intents of a language (compared ignoring case), or the same text twice in one intent.

    "HELLO" beside "hello" is no duplicate: the encoder sees case, so a shouted variant teaches something.
    """
    problems: list[DataProblem] = []
    labelled: dict[tuple[str, str], TrainingExample] = {}
    seen: dict[tuple[str, str, str], TrainingExample] = {}
    for example in examples:
        words = " ".join(example.text.split())
        path, _, line = example.source.rpartition(":")
        earlier = labelled.setdefault((example.lang, words.casefold()), example)
        if earlier.intent != example.intent:
            problems.append(
                DataProblem(
                    path,
                    int(line),
                    f"{example.text!r} is labelled {example.intent!r} here but {earlier.intent!r} "
                    f"at {earlier.source}; keep one",
                )
            )
            continue
        twin = seen.setdefault((example.lang, example.intent, words), example)
        if twin is not example:
            problems.append(DataProblem(path, int(line), f"{example.text!r} repeats {twin.source}; remove one"))
    return problems


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1

"""Read a knowledge base from Markdown, CSV and JSON-lines files, and refuse it whole if anything is wrong.

A source is one file or a folder (searched recursively) that may mix the three formats:

- ``*.md``: one article per file, YAML front matter (``id``, ``title``, ``questions``, ``lang``, ``tags``)
  and the answer as the body. Without ``lang``, a parent folder named like a language (``ru/``) gives it.
- ``*.csv``: a header with ``question`` and ``answer`` and optionally ``id``, ``questions`` (more ways to ask, one
  per line of the cell or ``|``-separated), ``lang``, ``tags`` (``;``-separated).
- ``*.jsonl``: one article per line, ``{"id", "question", "questions", "answer", "lang"}`` and optionally ``tags``.

Every problem in every file is collected before anything is reported, so an admin fixes them in one pass.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from kb_index.articles import Article, SourceLocation
from kb_index.errors import KbSourceError, SourceProblem

__all__ = ["SUPPORTED_SUFFIXES", "load_articles"]

log = logging.getLogger(__name__)

_MD_FIELDS = ("id", "title", "questions", "lang", "tags")
_CSV_REQUIRED = ("question", "answer")
_CSV_FIELDS = ("id", "question", "questions", "answer", "lang", "tags")
_JSONL_REQUIRED = ("id", "question", "answer")
_JSONL_FIELDS = ("id", "question", "questions", "answer", "lang", "tags")
_ID = re.compile(r"^[^\s\x00-\x1f]{1,200}$")
# libyaml's loader when PyYAML was built with it: ten times faster on a knowledge base of thousands of files.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_LANG = re.compile(r"^[a-z]{2}$")


class _Problems:
    """Collects the problems of one file."""

    def __init__(self, path: str, sink: list[SourceProblem]) -> None:
        self.path = path
        self._sink = sink

    def add(self, line: int, message: str) -> None:
        self._sink.append(SourceProblem(self.path, line, message))


def load_articles(source: Path) -> list[Article]:
    """Every article of ``source`` (a file or a folder), or ``KbSourceError`` with every problem found."""
    problems: list[SourceProblem] = []
    articles: list[Article] = []
    files = _source_files(source, problems)
    for path in files:
        reader = SUPPORTED_SUFFIXES[path.suffix.lower()]
        file_problems = _Problems(str(path), problems)
        text = _read_text(path, file_problems)
        if text is not None:
            articles.extend(reader(path, text, file_problems))
    _check_duplicates(articles, problems)
    if not articles and not problems:
        problems.append(
            SourceProblem(
                str(source), 0, "no articles found: add .md, .csv or .jsonl files with at least one article"
            )
        )
    if problems:
        raise KbSourceError(problems)
    return articles


def _source_files(source: Path, problems: list[SourceProblem]) -> list[Path]:
    if not source.exists():
        problems.append(SourceProblem(str(source), 0, "does not exist: check the KB_SOURCE path"))
        return []
    if source.is_file():
        if source.suffix.lower() not in SUPPORTED_SUFFIXES:
            problems.append(
                SourceProblem(str(source), 0, f"unsupported file type: use one of {', '.join(SUPPORTED_SUFFIXES)}")
            )
            return []
        return [source]
    files = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        # Directories are walked; anything else with an article suffix is read, so that a broken link or an
        # unreadable file is reported rather than silently left out.
        if any(part.startswith(".") for part in relative.parts) or path.is_dir():
            continue
        if path.suffix.lower() not in SUPPORTED_SUFFIXES or path.stem.upper() == "README":
            log.info("kb source: skipping %s (not an article file)", path)
            continue
        files.append(path)
    return files


def _read_text(path: Path, problems: _Problems) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.add(0, f"cannot be read ({exc.strerror or exc}): check the file's permissions")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        problems.add(
            line,
            f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}): save the file as UTF-8",
        )
        return None


def _lang_from_folder(path: Path) -> str:
    parent = path.parent.name.lower()
    return parent if _LANG.match(parent) else ""


# ---------------------------------------------------------------- Markdown


def _read_markdown(path: Path, text: str, problems: _Problems) -> list[Article]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        problems.add(
            1,
            "has no front matter: start the file with a '---' line, then the fields "
            "(id, title, questions, lang, tags), then another '---' line, then the answer",
        )
        return []
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        problems.add(1, "the front matter is not closed: add a '---' line after the fields")
        return []
    try:
        meta = yaml.load("\n".join(lines[1:end]), Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = 2 + mark.line if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        problems.add(line, f"the front matter is not valid YAML ({reason})")
        return []
    if not isinstance(meta, dict):
        problems.add(2, "the front matter must be fields like 'id: ...' and 'title: ...'")
        return []

    def line_of(key: str) -> int:
        for i in range(1, end):
            if re.match(rf"^{re.escape(str(key))}\s*:", lines[i]):
                return i + 1
        return 2

    for key in meta:
        if key not in _MD_FIELDS:
            problems.add(line_of(key), f"unknown field '{key}' (allowed: {', '.join(_MD_FIELDS)})")
    body_line = end + 2
    fields = _Fields(meta, problems, line_of)
    article_id = fields.identifier("id")
    title = fields.text("title", required=True)
    questions = fields.text_list("questions")
    lang = fields.lang("lang", default=_lang_from_folder(path))
    tags = fields.tags("tags")
    answer = "\n".join(lines[end + 1 :]).strip()
    if not answer:
        problems.add(body_line, "the answer is empty: write the answer below the front matter")
    if fields.ok and answer and article_id and title:
        return [
            Article(
                id=article_id,
                title=title,
                answer=answer,
                lang=lang,
                questions=questions,
                tags=tags,
                source=SourceLocation(problems.path, 1),
            )
        ]
    return []


def _at(line: int) -> Callable[[str], int]:
    """Every field of a one-line record is on that line."""
    return lambda _key: line


class _Fields:
    """Reads and checks the fields of one article, reporting each problem at the field's line."""

    def __init__(self, data: dict[str, Any], problems: _Problems, line_of: Callable[[str], int]) -> None:
        self._data = data
        self._problems = problems
        self._line_of = line_of
        self.ok = True

    def _fail(self, key: str, message: str) -> None:
        self.ok = False
        self._problems.add(self._line_of(key), message)

    def identifier(self, key: str) -> str:
        value = self._data.get(key)
        if value is None or str(value).strip() == "":
            self._fail(key, f"'{key}' is missing: give the article a unique id such as 'order-tracking'")
            return ""
        value = str(value).strip()
        if not _ID.match(value):
            self._fail(key, f"'{key}' {value!r} has spaces or is too long: use up to 200 characters without spaces")
            return ""
        return value

    def text(self, key: str, *, required: bool) -> str:
        value = self._data.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self._fail(key, f"'{key}' is missing or empty")
            return ""
        if not isinstance(value, (str, int, float)):
            self._fail(key, f"'{key}' must be text")
            return ""
        return str(value).strip()

    def text_list(self, key: str) -> tuple[str, ...]:
        value = self._data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            self._fail(key, f"'{key}' must be a list of phrasings, one per line starting with '- '")
            return ()
        # Empty and repeated phrasings carry nothing; they are dropped rather than refused.
        return tuple(dict.fromkeys(item for item in (str(v).strip() for v in value) if item))

    def lang(self, key: str, *, default: str = "") -> str:
        value = self._data.get(key)
        if value is None or str(value).strip() == "":
            return default
        value = str(value).strip().lower()
        if not _LANG.match(value):
            self._fail(key, f"'{key}' {value!r} is not a two-letter language code such as ru, uk or en")
            return default
        return value

    def tags(self, key: str) -> tuple[str, ...]:
        value = self._data.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [t for t in re.split(r"[;,]", value)]
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            self._fail(key, f"'{key}' must be a list of words, e.g. [orders, delivery]")
            return ()
        return tuple(t for t in (str(v).strip() for v in value) if t)


# ---------------------------------------------------------------- CSV


def _read_csv(path: Path, text: str, problems: _Problems) -> list[Article]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        problems.add(1, f"is not valid CSV ({exc})")
        return []
    if header is None:
        problems.add(1, "is empty: the first line must name the columns, e.g. 'question,answer'")
        return []
    columns = [h.strip().lower() for h in header]
    bad_header = False
    for name in columns:
        if name not in _CSV_FIELDS:
            problems.add(1, f"unknown column '{name}' (allowed: {', '.join(_CSV_FIELDS)})")
            bad_header = True
    for name in _CSV_REQUIRED:
        if name not in columns:
            problems.add(1, f"the column '{name}' is missing from the header line")
            bad_header = True
    if bad_header:
        return []
    articles = []
    row_start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.add(reader.line_num, f"is not valid CSV ({exc})")
            break
        line, row_start = row_start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            problems.add(line, f"has {len(row)} cells where the header has {len(columns)}: check commas and quotes")
            continue
        record: dict[str, Any] = dict(zip(columns, (cell.strip() for cell in row)))
        if "questions" in record:  # more ways to ask, one per line of the cell or separated by "|"
            record["questions"] = re.split(r"[\n|]", record["questions"])
        if not record.get("id"):
            # Stable across reordering of rows: derived from the question, not the row number.
            digest = hashlib.sha1(record.get("question", "").encode("utf-8")).hexdigest()[:8]
            record["id"] = f"{path.stem}-{digest}"
        fields = _Fields(record, problems, _at(line))
        article = _article_from_record(fields, record, path, line, problems)
        if article is not None:
            articles.append(article)
    return articles


def _article_from_record(
    fields: _Fields, record: dict[str, Any], path: Path, line: int, problems: _Problems
) -> Article | None:
    article_id = fields.identifier("id")
    title = fields.text("question", required=True)
    answer = fields.text("answer", required=False)
    if not answer:
        problems.add(line, "the answer is empty: every article needs an answer")
        fields.ok = False
    questions = fields.text_list("questions")
    lang = fields.lang("lang", default=_lang_from_folder(path))
    tags = fields.tags("tags")
    if not fields.ok:
        return None
    return Article(
        id=article_id,
        title=title,
        answer=answer,
        lang=lang,
        questions=questions,
        tags=tags,
        source=SourceLocation(problems.path, line),
    )


# ---------------------------------------------------------------- JSON lines


def _read_jsonl(path: Path, text: str, problems: _Problems) -> list[Article]:
    articles = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.add(number, f"is not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(record, dict):
            problems.add(number, "must be a JSON object like {\"id\": ..., \"question\": ..., \"answer\": ...}")
            continue
        unknown = [k for k in record if k not in _JSONL_FIELDS]
        for key in unknown:
            problems.add(number, f"unknown field '{key}' (allowed: {', '.join(_JSONL_FIELDS)})")
        missing = [k for k in _JSONL_REQUIRED if k not in record]
        for key in missing:
            problems.add(number, f"the field '{key}' is missing")
        if unknown or missing:
            continue
        fields = _Fields(record, problems, _at(number))
        article = _article_from_record(fields, record, path, number, problems)
        if article is not None:
            articles.append(article)
    return articles


def _check_duplicates(articles: Iterable[Article], problems: list[SourceProblem]) -> None:
    seen: dict[tuple[str, str], list[Article]] = defaultdict(list)
    for article in articles:
        seen[article.key].append(article)
    for (article_id, lang), copies in seen.items():
        if len(copies) < 2:
            continue
        for article in copies:
            others = ", ".join(str(c.source) for c in copies if c is not article)
            where = article.source or SourceLocation("?")
            label = f"'{article_id}'" + (f" ({lang})" if lang else "")
            problems.append(
                SourceProblem(where.path, where.line, f"duplicate article id {label}: also at {others}")
            )


SUPPORTED_SUFFIXES: dict[str, Callable[[Path, str, _Problems], list[Article]]] = {
    ".md": _read_markdown,
    ".markdown": _read_markdown,
    ".csv": _read_csv,
    ".jsonl": _read_jsonl,
}

"""The layout the README promises, checked on the code's own imports: the core and the features know no channel.

- no module of the core (``bot/core``) or of a feature package imports aiogram;
- no feature package and not the core imports a channel (``bot.telegram``, ``bot.rasa``, ``bot.web``) or the
  composition root;
- no two packages import each other, directly or round a circle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO

CHANNEL_FREE = ("bot.core", "handoff", "surveys", "intents", "kb_index")
CHANNELS = ("bot.telegram", "bot.rasa", "bot.web")
ROOT = ("bot.factory", "bot.runner", "bot.cli")


def _package(module: str) -> str:
    """The package a module counts under: bot's sub-packages and its own modules each on their own."""
    parts = module.split(".")
    if parts[0] == "bot" and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def _imports() -> dict[str, set[tuple[str, str]]]:
    """For each module of the product, the modules it imports: {module: {(imported, file)}}."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for top in ("bot", "handoff", "surveys", "intents", "kb_index"):
        for path in (REPO / top).rglob("*.py"):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found[module].add((node.module, str(Path(path).relative_to(REPO))))
                elif isinstance(node, ast.Import):
                    found[module].update((alias.name, str(path.relative_to(REPO))) for alias in node.names)
    return found


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_core_and_the_features_import_no_channel_and_no_aiogram() -> None:
    wrong = sorted(
        f"{where} imports {imported}"
        for module, imports in _imports().items()
        if _within(module, CHANNEL_FREE)
        for imported, where in imports
        if _within(imported, ("aiogram", *CHANNELS, *ROOT))
    )
    assert wrong == []


def test_no_two_packages_import_each_other() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imports in _imports().items():
        for imported, _ in imports:
            if _within(imported, ("bot", "handoff", "surveys", "intents", "kb_index")):
                source, target = _package(module), _package(imported)
                if source != target:
                    edges[source].add(target)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            package = todo.pop()
            for following in edges.get(package, ()):
                if following == goal:
                    return True
                if following not in seen:
                    seen.add(following)
                    todo.append(following)
        return False

    circles = sorted(f"{a} <-> {b}" for a in list(edges) for b in edges[a] if reaches(b, a))
    assert circles == []

"""Index versions on disk, and the one step that switches searching from one version to the next.

    <root>/
      versions/<version>/        one complete, immutable index version
        manifest.json            model, dimension, counts, file checksums, when and from what it was built
        articles.jsonl           every article (one language version a line)
        entries.npz              which article and which kind of text each vector belongs to
        vectors.npy              the vectors, float32, one row per entry
        index.faiss              the FAISS index over the vectors
        lexical.npz, lexical-vocabulary.json   BM25 weights of every article for every stemmed word
      CURRENT                    the name of the version being served, replaced atomically
      learned.jsonl              phrasings learned from agents, kept apart from the source files

A version is written completely in a temporary folder, renamed into ``versions/`` and only then named in
``CURRENT``; a build that fails at any point leaves the served version untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kb_index.errors import IndexUnavailableError

__all__ = ["IndexStore", "Manifest"]

FORMAT = 1


@dataclass(frozen=True)
class Manifest:
    """What an index version holds, read from its ``manifest.json``."""

    version: str
    data: dict[str, Any]

    @property
    def model_id(self) -> str:
        return str(self.data["model_id"])

    @property
    def dimension(self) -> int:
        return int(self.data["dimension"])

    @property
    def counts(self) -> dict[str, Any]:
        return dict(self.data.get("counts", {}))

    @property
    def single_phrasing(self) -> tuple[int, list[str]]:
        """How many articles have one phrasing only (see ``ReindexSummary.single_phrasing``), and the first ids."""
        return int(self.counts.get("single_phrasing", 0)), [str(i) for i in self.data.get("single_phrasing_examples", [])]

    @property
    def article_fingerprints(self) -> dict[str, str]:
        return dict(self.data.get("article_fingerprints", {}))


class IndexStore:
    """The folder of index versions of one knowledge base."""

    def __init__(self, root: Path, *, keep_versions: int = 3) -> None:
        self.root = root
        self.keep_versions = max(2, keep_versions)
        self.versions_dir = root / "versions"
        self.current_file = root / "CURRENT"

    @property
    def learned_path(self) -> Path:
        return self.root / "learned.jsonl"

    def current_version(self) -> str | None:
        try:
            name = self.current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def version_dir(self, version: str) -> Path:
        return self.versions_dir / version

    def read_manifest(self, version: str | None = None) -> Manifest:
        version = version or self.current_version()
        if version is None:
            raise IndexUnavailableError(
                f"No index has been built in {self.root} yet: run 'zabota kb reindex' first."
            )
        path = self.version_dir(version) / "manifest.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexUnavailableError(f"Index version {version} cannot be read ({exc}).") from exc
        if data.get("format") != FORMAT:
            raise IndexUnavailableError(
                f"Index version {version} has format {data.get('format')}, this Zabota reads format {FORMAT}: "
                "run 'zabota kb reindex'."
            )
        return Manifest(version, data)

    def verify(self, version: str) -> Manifest:
        """The version's manifest, after checking that each file is there with the checksum it was written with."""
        manifest = self.read_manifest(version)
        folder = self.version_dir(version)
        for name, expected in manifest.data["files"].items():
            path = folder / name
            if not path.is_file() or _sha256(path) != expected:
                raise IndexUnavailableError(f"Index version {version} is damaged: {name} does not match its checksum.")
        return manifest

    @contextlib.contextmanager
    def building(self) -> Iterator[Path]:
        """A temporary folder to write a new version into; removed if the build fails."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".building-", dir=self.versions_dir))
        try:
            yield folder
        finally:
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)

    def commit(self, folder: Path, manifest_data: dict[str, Any]) -> Manifest:
        """Seal a built folder as a new version and make it the current one, in one atomic step."""
        created = datetime.now(UTC)
        files = {path.name: _sha256(path) for path in sorted(folder.iterdir()) if path.is_file()}
        tag = hashlib.sha256("".join(files.values()).encode()).hexdigest()[:8]
        version = f"{created:%Y%m%d-%H%M%S-%f}-{tag}"
        data = {"format": FORMAT, "version": version, "created_at": created.isoformat(), **manifest_data}
        data["files"] = files
        _write_atomic(folder / "manifest.json", json.dumps(data, ensure_ascii=False, indent=2))
        _fsync_dir(folder)
        final = self.version_dir(version)
        folder.rename(final)
        _fsync_dir(self.versions_dir)
        _write_atomic(self.current_file, version + "\n")
        _fsync_dir(self.root)
        self._prune(keep={version})
        return Manifest(version, data)

    def versions(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _prune(self, keep: set[str]) -> None:
        # Older versions stay for a while: another process may still be loading one of them.
        for old in self.versions()[: -self.keep_versions]:
            if old not in keep:
                shutil.rmtree(self.version_dir(old), ignore_errors=True)

    @contextlib.contextmanager
    def reindex_lock(self) -> Iterator[None]:
        """One reindex at a time per store, across processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "reindex.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

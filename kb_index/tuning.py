"""Adapt the encoder to one knowledge base: contrastive fine-tuning on the knowledge base's own texts.

Each article teaches the model that its title and phrasings (and phrasings learned from agents) ask for
its answer and for each other, and that they do not ask for the other articles in the same batch. No
customer question of an evaluation set is used. The word embeddings stay frozen, which keeps the model's
cross-language alignment: a model tuned on a Russian knowledge base still matches Ukrainian and English
questions to it.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kb_index.articles import Article
from kb_index.encoder import Encoder
from kb_index.learned import LearnedPhrasing
from kb_index.text import markdown_to_plain, normalize_text

__all__ = ["TuningOptions", "TuningReport", "tune_encoder"]

TuningProgress = Callable[[int, int], None]  # (step, steps)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class TuningOptions:
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 3e-5
    temperature: float = 0.05
    max_length: int = 128
    pairs_per_article: int = 16  # per epoch; caps articles with hundreds of phrasings
    seed: int = 0


@dataclass(frozen=True)
class TuningReport:
    folder: str
    base_model: str
    articles: int
    pairs_per_epoch: int
    epochs: int
    seconds: float
    final_loss: float


def _answer_passages(answer: str) -> list[str]:
    text = normalize_text(markdown_to_plain(answer), strip_pleasantries=False)
    sentences = [s.strip() for s in _SENTENCE_END.split(markdown_to_plain(answer)) if len(s.strip()) > 15]
    return [text, *(normalize_text(s, strip_pleasantries=False) for s in sentences)]


def _training_pairs(
    articles: Sequence[Article], learned: Sequence[LearnedPhrasing], options: TuningOptions, rng: random.Random
) -> list[tuple[int, str, str]]:
    """(article number, question-like text, a text of the same article) pairs for one epoch."""
    groups: dict[str, list[Article]] = {}
    for article in articles:
        groups.setdefault(article.id, []).append(article)
    extra: dict[str, list[str]] = {}
    for phrasing in learned:
        extra.setdefault(phrasing.article_id, []).append(phrasing.text)
    pairs: list[tuple[int, str, str]] = []
    for number, (article_id, versions) in enumerate(groups.items()):
        anchors = [normalize_text(t) for a in versions for t in (a.title, *a.questions)]
        anchors += [normalize_text(t) for t in extra.get(article_id, ())]
        anchors = [a for a in dict.fromkeys(anchors) if a]
        passages = [p for a in versions for p in _answer_passages(a.answer) if p]
        candidates: list[tuple[str, str]] = [(anchor, passage) for anchor in anchors[:4] for passage in passages]
        for anchor in anchors:
            others = [a for a in anchors if a != anchor]
            if others:
                candidates.append((anchor, rng.choice(others)))
        rng.shuffle(candidates)
        pairs.extend((number, anchor, positive) for anchor, positive in candidates[: options.pairs_per_article])
    rng.shuffle(pairs)
    return pairs


def _batches(pairs: list[tuple[int, str, str]], size: int) -> list[list[tuple[int, str, str]]]:
    """Batches in which no two pairs share an article, so no in-batch negative is a true positive."""
    batches: list[list[tuple[int, str, str]]] = []
    open_batches: list[tuple[list[tuple[int, str, str]], set[int]]] = []
    for pair in pairs:
        for batch, used in open_batches:
            if pair[0] not in used:
                batch.append(pair)
                used.add(pair[0])
                if len(batch) == size:
                    batches.append(batch)
                    open_batches.remove((batch, used))
                break
        else:
            open_batches.append(([pair], {pair[0]}))
    batches.extend(batch for batch, _ in open_batches if len(batch) > 1)
    return batches


def tune_encoder(
    encoder: Encoder,
    articles: Sequence[Article],
    folder: Path,
    *,
    learned: Sequence[LearnedPhrasing] = (),
    options: TuningOptions = TuningOptions(),
    progress: TuningProgress | None = None,
) -> TuningReport:
    """Fine-tune a copy of ``encoder``'s model on ``articles`` and save it as a sentence-transformers folder."""
    import copy

    import torch
    import torch.nn.functional as F

    started = time.perf_counter()
    rng = random.Random(options.seed)
    torch.manual_seed(options.seed)
    model: Any = copy.deepcopy(encoder.torch_model())  # fine-tuning needs torch whatever engine serves
    transformer = model[0]
    backbone = transformer.auto_model
    for parameter in backbone.embeddings.parameters():
        parameter.requires_grad = False
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.learning_rate)
    tokenizer = model.tokenizer
    prompts = getattr(model, "prompts", {}) or {}
    query_prompt = prompts.get("query", "")
    document_prompt = prompts.get("document", prompts.get("passage", ""))

    def embed(texts: list[str]) -> torch.Tensor:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=options.max_length, return_tensors="pt")
        hidden = backbone(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)

    epochs = [_batches(_training_pairs(articles, learned, options, rng), options.batch_size) for _ in range(options.epochs)]
    steps = sum(len(batches) for batches in epochs)
    step = 0
    loss_value = float("nan")
    model.train()
    for batches in epochs:
        for batch in batches:
            queries = embed([query_prompt + anchor for _, anchor, _ in batch])
            documents = embed([document_prompt + positive for _, _, positive in batch])
            logits = queries @ documents.T / options.temperature
            loss = F.cross_entropy(logits, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_value = float(loss.detach())
            step += 1
            if progress:
                progress(step, steps)
    model.eval()
    folder.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(folder))
    report = TuningReport(
        folder=str(folder),
        base_model=encoder.model_id,
        articles=len({a.id for a in articles}),
        pairs_per_epoch=sum(len(b) for b in epochs[0]) if epochs else 0,
        epochs=options.epochs,
        seconds=round(time.perf_counter() - started, 1),
        final_loss=round(loss_value, 4),
    )
    (folder / "zabota-model.json").write_text(
        json.dumps(
            {"tuned_at": datetime.now(UTC).isoformat(timespec="seconds"), **asdict(report), "options": asdict(options)},
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    return report

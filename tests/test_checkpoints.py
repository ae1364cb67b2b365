"""Checkpoints that ask for code are refused before any of their weights load.

Each crafted checkpoint is a tiny BERT whose weights file is replaced by
garbage: had anything tried to load it, the error would be another."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_DIR
from tiny_models import build_tiny_bert, fixture_texts
from transformers import AutoModel

from conll_ner.training.checkpoints import UnsafeCheckpoint, check_checkpoint, check_no_trusted_remote_code

REFUSED = {
    "auto_map": ("config.json", {"auto_map": {"AutoModel": "modeling_evil.EvilModel"}}),
    "tokenizer auto_map": ("tokenizer_config.json", {"auto_map": {"AutoTokenizer": ["tok.Evil", None]}}),
    "internal attention": ("config.json", {"_attn_implementation_internal": "kernels-community/evil"}),
    "nested internal attention": ("config.json", {"text_config": {"_attn_implementation_internal": "eager"}}),
    "hub kernel attention": ("config.json", {"attn_implementation": "someone/flash-attn-kernel"}),
    "unknown attention": ("config.json", {"_attn_implementation": "my_attention"}),
}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("clean") / "bert", fixture_texts())


def crafted(tiny_bert: Path, folder: Path, filename: str, fields: dict) -> Path:
    folder.mkdir(parents=True)
    for path in tiny_bert.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "model.safetensors").write_bytes(b"not weights")
    content = json.loads((folder / filename).read_text())
    (folder / filename).write_text(json.dumps({**content, **fields}))
    return folder


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_checkpoint_asking_for_code_is_refused_naming_file_and_field(tiny_bert, tmp_path, case):
    filename, fields = REFUSED[case]
    folder = crafted(tiny_bert, tmp_path / "ckpt", filename, fields)
    with pytest.raises(UnsafeCheckpoint) as refused:
        check_checkpoint(str(folder))
    field = next(iter(fields)) if case != "nested internal attention" else "text_config._attn_implementation_internal"
    assert f"{filename}: {field}" in str(refused.value)
    assert "docs/security.md" in str(refused.value)


@pytest.mark.parametrize("attention", ["eager", "sdpa", "flash_attention_2", None])
def test_built_in_attention_and_clean_checkpoints_pass(tiny_bert, tmp_path, attention):
    check_checkpoint(str(tiny_bert))
    folder = crafted(tiny_bert, tmp_path / "ckpt", "config.json", {"attn_implementation": attention})
    check_checkpoint(str(folder))  # the garbage weights are never read


def test_a_hub_checkpoint_is_checked_from_its_config_file_alone(tiny_bert, tmp_path, monkeypatch):
    import huggingface_hub

    folder = crafted(tiny_bert, tmp_path / "ckpt", "config.json", REFUSED["internal attention"][1])
    fetched = []

    def download(repo_id, filename, revision=None):
        fetched.append(filename)
        return str(folder / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    with pytest.raises(UnsafeCheckpoint, match="Refusing to load checkpoint 'acme/evil-bert'.*CVE-2026-4372"):
        check_checkpoint("acme/evil-bert")
    assert fetched == ["config.json", "tokenizer_config.json"]


def test_a_hub_checkpoint_that_cannot_be_read_offline_is_not_loaded(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UnsafeCheckpoint, match="cannot read config.json of 'acme/never-cached-bert'"):
        check_checkpoint("acme/never-cached-bert")


def test_trust_remote_code_anywhere_in_a_config_is_refused():
    check_no_trusted_remote_code(
        {"components": {"transformer": {"model": {"tokenizer_config": {"use_fast": True}}}}}, "x.cfg"
    )
    config = {"components": {"transformer": {"model": {"transformer_config": {"trust_remote_code": True}}}}}
    with pytest.raises(
        UnsafeCheckpoint, match="x.cfg: components.transformer.model.transformer_config.trust_remote_code"
    ):
        check_no_trusted_remote_code(config, "x.cfg")


def train_step(tmp_path: Path, checkpoint: Path, *extra: str) -> subprocess.CompletedProcess:
    corpus = tmp_path / "corpus"
    for split in ("train", "dev"):
        (corpus / split).mkdir(parents=True, exist_ok=True)
        (corpus / split / "en.spacy").write_bytes(b"")
    return subprocess.run(
        [
            sys.executable,
            str(PROJECT_DIR / "scripts" / "train.py"),
            str(PROJECT_DIR / "configs" / "transformer.cfg"),
            str(tmp_path / "out"),
            "--lang",
            "en",
            "--corpus",
            str(corpus),
            "--transformer",
            str(checkpoint),
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )


def test_the_train_step_refuses_before_loading_anything(tiny_bert, tmp_path):
    folder = crafted(tiny_bert, tmp_path / "ckpt", "config.json", REFUSED["auto_map"][1])
    result = train_step(tmp_path, folder)
    assert result.returncode == 1
    assert f"Refusing to load checkpoint '{folder}': config.json: auto_map" in " ".join(result.stdout.split())
    assert not (tmp_path / "out").exists()


def test_the_train_step_refuses_a_config_that_trusts_remote_code(tiny_bert, tmp_path):
    result = train_step(
        tmp_path, tiny_bert, "--components.transformer.model.tokenizer_config.trust_remote_code", "true"
    )
    assert result.returncode == 1
    assert "tokenizer_config.trust_remote_code = true" in " ".join(result.stdout.split())


def test_safetensors_weights_are_preferred_to_a_pickle(tiny_bert, tmp_path):
    """transformers' own choice, which the project relies on: a checkpoint
    with model.safetensors never unpickles its pytorch_model.bin."""
    folder = tmp_path / "both"
    folder.mkdir()
    for path in tiny_bert.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "pytorch_model.bin").write_bytes(b"a pickle that must never be loaded")
    loaded, original = AutoModel.from_pretrained(str(folder)), AutoModel.from_pretrained(str(tiny_bert))
    assert loaded.embeddings.word_embeddings.weight.equal(original.embeddings.word_embeddings.weight)

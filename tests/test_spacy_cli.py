"""Plain spaCy commands on every config, as users reach for them first:
`spacy debug config`, `spacy debug data` and `spacy train` with only the
corpus paths given (no train log path, no project step in between)."""

import subprocess
import sys

import pytest
import spacy
from conftest import PROJECT_DIR
from fixtures import ENGLISH_TRAIN
from tiny_models import build_tiny_bert, fixture_texts

from conll_ner.data.conll import read_conll_file
from conll_ner.data.docbin import conll_to_docbin, save_conversion

CONFIGS = sorted(path.stem for path in (PROJECT_DIR / "configs").glob("*.cfg"))


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("spacy-cli")
    source = root / "eng.train"
    source.write_text(ENGLISH_TRAIN * 40, encoding="utf-8")  # spaCy debug data wants 100+ examples
    doc_bin, stats = conll_to_docbin(read_conll_file(source).sentences, spacy.blank("en").vocab, n_sents=1)
    save_conversion(doc_bin, stats, root / "train.spacy")
    return root, build_tiny_bert(root / "tiny-bert", fixture_texts())


def spacy_command(root, encoder, command, config, *extra):
    args = [
        sys.executable,
        "-m",
        "spacy",
        *command.split(),
        str(PROJECT_DIR / "configs" / f"{config}.cfg"),
        "--paths.train",
        str(root / "train.spacy"),
        "--paths.dev",
        str(root / "train.spacy"),
        *extra,
    ]
    if config == "transformer":  # offline: a local checkpoint instead of the hub's mBERT
        args += ["--components.transformer.model.name", str(encoder)]
    return subprocess.run(
        args, cwd=root, capture_output=True, text=True, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"}
    )


def test_every_config_is_covered():
    assert CONFIGS == ["cnn", "transformer"]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("command", ["debug config", "debug data"])
def test_spacy_debug_commands_work_on_the_config(tiny_setup, config, command):
    root, encoder = tiny_setup
    result = spacy_command(root, encoder, command, config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if command == "debug data":
        assert "Training stats" in result.stdout and "4 label(s)" in result.stdout


@pytest.mark.parametrize("config", CONFIGS)
def test_spacy_train_works_on_the_config_on_the_cpu(tiny_setup, config, tmp_path):
    root, encoder = tiny_setup
    # a few updates keep the test short; the rest of the config is as shipped
    result = spacy_command(
        root,
        encoder,
        "train",
        config,
        "--output",
        str(tmp_path / "out"),
        "--training.max_steps",
        "4",
        "--training.eval_frequency",
        "2",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "out" / "model-last" / "config.cfg").is_file()
    assert not list(tmp_path.rglob("train_log.jsonl"))  # no log path: no log file


@pytest.mark.parametrize("config", CONFIGS)
def test_debug_config_without_paths_fails_as_for_spacys_own_reader(config):
    """With null corpus paths spaCy's own `spacy.Corpus.v1` (our train
    corpus) stops with E913, so `spacy debug config` cannot pass; our dev
    reader accepts the null path the same way instead of failing the type
    check ("dev -> path None is not <class 'str'>")."""
    from spacy.util import load_config, registry

    result = subprocess.run(
        [sys.executable, "-m", "spacy", "debug", "config", str(PROJECT_DIR / "configs" / f"{config}.cfg")],
        capture_output=True,
        text=True,
    )
    assert "E913" in result.stderr and "is not <class 'str'>" not in result.stdout + result.stderr
    dev = load_config(PROJECT_DIR / "configs" / f"{config}.cfg", interpolate=True)["corpora"]["dev"]
    with pytest.raises(ValueError, match="E913"):
        registry.resolve({"dev": dict(dev)})

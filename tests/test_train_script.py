"""The train step: scripts/train.py as the workflow runs it, and the checks of
conll_ner/training/train.py that fail before a run starts."""

import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from conftest import PROJECT_DIR
from fixtures import ENGLISH_TRAIN
from spacy.util import load_config
from wasabi import Printer

from conll_ner.data.conll import read_conll_file
from conll_ner.data.docbin import conll_to_docbin, save_conversion
from conll_ner.runs import training_path
from conll_ner.training.train import TrainSetupError, check_grad_scaler, require_gpu, train_pipeline


def english_corpus(folder: Path) -> Path:
    """A convert step's output folder with the fixture's English sentences
    as both the training and the dev set."""
    source = folder / "eng.train"
    source.write_text(ENGLISH_TRAIN, encoding="utf-8")
    doc_bin, stats = conll_to_docbin(read_conll_file(source).sentences, spacy.blank("en").vocab, n_sents=1)
    for split in ("train", "dev"):
        save_conversion(doc_bin, stats, training_path(folder / "corpus", "en", split))
    return folder / "corpus"


def test_extra_arguments_override_the_config_like_spacy_train(tmp_path):
    corpus = english_corpus(tmp_path)
    output = tmp_path / "training"
    result = subprocess.run(
        [
            sys.executable,
            "scripts/train.py",
            "configs/cnn.cfg",
            str(output),
            "--lang",
            "en",
            "--corpus",
            str(corpus),
            "--epochs",
            "3",
            "--training.max_steps",
            "2",
            "--training.eval_frequency",
            "1",
            "--training.dropout",
            "0.25",
            "--training.batcher.size.stop",
            "77",
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    saved = load_config(output / "model-last" / "config.cfg")
    assert saved["training"]["dropout"] == 0.25
    assert saved["training"]["batcher"]["size"]["stop"] == 77
    assert saved["training"]["max_steps"] == 2
    assert saved["budget"]["epochs"] == 3  # the run's epochs, not the config's


def test_an_integer_init_scale_is_refused_before_training():
    config = load_config(PROJECT_DIR / "configs" / "transformer.cfg")
    check_grad_scaler(config)  # the shipped config writes a float
    config["components"]["transformer"]["model"]["grad_scaler_config"]["init_scale"] = 65536
    with pytest.raises(TrainSetupError, match=r"must be a float \(write 65536.0\)"):
        check_grad_scaler(config)


def test_a_missing_corpus_says_which_step_writes_it(tmp_path):
    require_gpu(-1)  # the CPU needs nothing
    with pytest.raises(TrainSetupError, match="does not exist: run `spacy project run convert` first"):
        train_pipeline(
            PROJECT_DIR / "configs" / "cnn.cfg", tmp_path / "out", Printer(), lang="en", corpus_dir=tmp_path / "corpus"
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("overridden", [False, True])
def test_the_peak_rate_line_names_where_the_rate_comes_from(monkeypatch, tmp_path, capsys, overridden):
    """The rate by encoder size, or an override's, whichever the run uses."""
    from tiny_models import build_tiny_bert, fixture_texts

    from conll_ner.training import train

    corpus = english_corpus(tmp_path)
    bert = build_tiny_bert(tmp_path / "bert", fixture_texts())
    passed = {}
    monkeypatch.setattr(train, "train_from_config", lambda *args, overrides, **kwargs: passed.update(overrides))
    extra = {"training.optimizer.learn_rate.initial_rate": 3e-4} if overridden else {}
    train.train_pipeline(
        PROJECT_DIR / "configs" / "transformer.cfg", tmp_path / "out", Printer(), lang="en", corpus_dir=corpus,
        transformer=str(bert), extra=extra,
    )  # fmt: skip
    printed = [line for line in capsys.readouterr().out.splitlines() if "Peak learning rate" in line]
    small = load_config(PROJECT_DIR / "configs" / "transformer.cfg")["learn_rate_by_encoder_size"]["small"]
    if overridden:
        assert passed["training.optimizer.learn_rate.initial_rate"] == 3e-4
        assert len(printed) == 1 and "0.0003, as overridden" in printed[0]
    else:
        assert passed["training.optimizer.learn_rate.initial_rate"] == small
        assert len(printed) == 1 and f"{small:g} for a small encoder" in printed[0]


@pytest.mark.parametrize("given_layers", [None, 5])
def test_layer_decay_counts_the_encoders_own_layers_unless_given(monkeypatch, tmp_path, capsys, given_layers):
    """The layer-decay optimizer gets the checkpoint's num_hidden_layers from
    the train step; an override's count wins."""
    import json

    from tiny_models import build_tiny_bert, fixture_texts

    from conll_ner.training import train

    corpus = english_corpus(tmp_path)
    bert = build_tiny_bert(tmp_path / "bert", fixture_texts())
    layers = json.loads((bert / "config.json").read_text())["num_hidden_layers"]
    passed = {}
    monkeypatch.setattr(train, "train_from_config", lambda *args, overrides, **kwargs: passed.update(overrides))
    extra = {"training.optimizer.@optimizers": "conll_ner.AdamWithLayerDecay.v1", "training.optimizer.layer_decay": 0.8}
    if given_layers is not None:
        extra["training.optimizer.encoder_layers"] = given_layers
    train.train_pipeline(
        PROJECT_DIR / "configs" / "transformer.cfg", tmp_path / "out", Printer(), lang="en", corpus_dir=corpus,
        transformer=str(bert), extra=extra,
    )  # fmt: skip
    printed = [line for line in capsys.readouterr().out.splitlines() if "Layer-wise rate decay" in line]
    expected = layers if given_layers is None else given_layers
    assert passed["training.optimizer.encoder_layers"] == expected
    assert passed["training.optimizer.layer_decay"] == 0.8  # the override's
    assert len(printed) == 1 and f"0.8 over {expected} encoder layers, as overridden" in printed[0]


def test_layer_decay_without_a_transformer_is_refused(tmp_path):
    corpus = english_corpus(tmp_path)
    extra = {"training.optimizer.@optimizers": "conll_ner.AdamWithLayerDecay.v1", "training.optimizer.layer_decay": 0.9}
    with pytest.raises(TrainSetupError, match="this config has none"):
        train_pipeline(
            PROJECT_DIR / "configs" / "cnn.cfg", tmp_path / "out", Printer(), lang="en", corpus_dir=corpus, extra=extra
        )


@pytest.mark.parametrize("overridden", [False, True])
def test_the_default_recipe_decays_a_small_encoders_rate_over_its_own_layers(monkeypatch, tmp_path, capsys, overridden):
    """configs/transformer.cfg as shipped: the decay and the NER model's rate
    scale of the encoder's size and the checkpoint's layer count reach the
    optimizer; an override of the scale wins."""
    import json

    from tiny_models import build_tiny_bert, fixture_texts

    from conll_ner.training import train

    corpus = english_corpus(tmp_path)
    bert = build_tiny_bert(tmp_path / "bert", fixture_texts())
    layers = json.loads((bert / "config.json").read_text())["num_hidden_layers"]
    config = load_config(PROJECT_DIR / "configs" / "transformer.cfg")
    small_decay = config["layer_decay_by_encoder_size"]["small"]
    small_head_scale = config["head_rate_scale_by_encoder_size"]["small"]
    assert config["training"]["optimizer"]["layer_decay"] != small_decay  # the written value is the default mBERT's
    assert config["training"]["optimizer"]["head_rate_scale"] != small_head_scale
    passed = {}
    monkeypatch.setattr(train, "train_from_config", lambda *args, overrides, **kwargs: passed.update(overrides))
    extra = {"training.optimizer.head_rate_scale": 3.0} if overridden else {}
    train.train_pipeline(
        PROJECT_DIR / "configs" / "transformer.cfg", tmp_path / "out", Printer(), lang="en", corpus_dir=corpus,
        transformer=str(bert), extra=extra,
    )  # fmt: skip
    assert passed["training.optimizer.layer_decay"] == small_decay
    assert passed["training.optimizer.encoder_layers"] == layers
    out = capsys.readouterr().out.splitlines()
    printed = [line for line in out if "Layer-wise rate decay" in line]
    assert len(printed) == 1 and f"{small_decay:g} over {layers} encoder layers for a small encoder" in printed[0]
    printed = [line for line in out if "NER model at" in line]
    if overridden:
        assert passed["training.optimizer.head_rate_scale"] == 3.0
        assert len(printed) == 1 and "3x the peak rate, as overridden" in printed[0]
    else:
        assert passed["training.optimizer.head_rate_scale"] == small_head_scale
        assert len(printed) == 1 and f"{small_head_scale:g}x the peak rate for a small encoder" in printed[0]

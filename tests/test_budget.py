"""Training budgets in epochs: updates, evaluations and patience from the corpus."""

import subprocess
import sys

import pytest
import spacy
from conftest import PROJECT_DIR
from spacy.tokens import Doc, DocBin
from spacy.util import load_config

from conll_ner.training.budget import plan_training

# batches of exactly 2 docs make the expected numbers easy to count
BY_TWO = {"training.batcher": {"@batchers": "spacy.batch_by_sequence.v1", "size": 2, "get_length": None}}


def write_corpus(path, n_docs: int, words_per_doc: int = 5) -> None:
    vocab = spacy.blank("en").vocab
    docs = [Doc(vocab, words=[f"w{i}"] * words_per_doc) for i in range(n_docs)]
    path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs).to_disk(path)


def cnn_config(train, **overrides):
    return load_config(PROJECT_DIR / "configs" / "cnn.cfg", overrides={"paths.train": str(train), **overrides})


def test_updates_follow_corpus_size_epochs_and_words_per_update(tmp_path):
    train = tmp_path / "train.spacy"
    write_corpus(train, n_docs=10)
    plan = plan_training(cnn_config(train, **BY_TWO), epochs=8)
    assert (plan.corpus_docs, plan.corpus_words, plan.updates_per_epoch) == (10, 50, 5)
    assert plan.words_per_update == pytest.approx(10.0)
    # 8 epochs x 5 updates, 4 evaluations (the config's) every 10 updates
    assert (plan.updates, plan.evaluations, plan.eval_frequency) == (40, 4, 10)
    assert plan.patience == 20  # patience_share 0.5 in configs/cnn.cfg
    assert plan.warmup_updates == int(40 * 0.02)  # the CNN schedule's warmup_fraction
    assert plan.overrides() == {
        "budget.epochs": 8,  # the run's epochs, not the config's 10, in the saved config
        "training.max_steps": 40,
        "training.eval_frequency": 10,
        "training.patience": 0,  # spaCy's own count from step 0 is off: the guard holds patience
        "training.logger.patience": 20,
        "training.optimizer.learn_rate.total_steps": 40,
    }

    # a config logging through another logger keeps spaCy's own patience
    other = cnn_config(train, **BY_TWO)
    other["training"]["logger"] = {"@loggers": "spacy.ConsoleLogger.v1"}
    assert plan_training(other, epochs=8).overrides()["training.patience"] == 20
    assert "training.logger.patience" not in plan_training(other, epochs=8).overrides()

    bigger = tmp_path / "bigger.spacy"
    write_corpus(bigger, n_docs=20)
    assert plan_training(cnn_config(bigger, **BY_TWO), epochs=8).updates == 80
    # fractional epochs count a share of the last pass
    assert plan_training(cnn_config(train, **BY_TWO), epochs=2.5).updates_per_epoch == 5
    assert plan_training(cnn_config(train, **{**BY_TWO, "budget.evaluations": 1}), epochs=2.5).updates == 13


def test_zero_epochs_means_the_configs_own_and_max_steps_caps(tmp_path):
    train = tmp_path / "train.spacy"
    write_corpus(train, n_docs=10)
    config = cnn_config(train, **BY_TWO)
    own = plan_training(config)
    assert own.epochs == config["budget"]["epochs"] == 10
    assert own.updates == 48 and own.capped_at == 0  # 50 updates, whole evaluation intervals
    capped = plan_training(config, epochs=8, max_steps=12)
    assert capped.capped_at == 12 and capped.updates == 12 and capped.eval_frequency == 3
    assert "capped by max_steps 12" in capped.describe()
    # a cap above the planned run changes nothing
    assert plan_training(config, epochs=8, max_steps=1000).updates == 40


def test_compounding_batch_sizes_run_on_across_epochs(tmp_path):
    """The CNN's batch sizes keep growing in later epochs (spaCy reuses one
    batcher), so later epochs take fewer updates than the first."""
    train = tmp_path / "train.spacy"
    write_corpus(train, n_docs=400, words_per_doc=10)
    config = cnn_config(train, **{"budget.evaluations": 1})
    one, three = plan_training(config, epochs=1), plan_training(config, epochs=3)
    assert one.updates_per_epoch == three.updates_per_epoch
    assert three.updates < 3 * one.updates


def test_a_config_without_budget_is_refused_with_the_reason(tmp_path):
    train = tmp_path / "train.spacy"
    write_corpus(train, n_docs=2)
    config = cnn_config(train)
    del config["budget"]
    with pytest.raises(ValueError, match=r"\[budget\]"):
        plan_training(config)


def test_train_step_prints_the_plan_and_runs_it(tmp_path):
    for split in ("train", "dev"):
        write_corpus(tmp_path / "corpus" / split / "en.spacy", n_docs=10)
    config = load_config(PROJECT_DIR / "configs" / "cnn.cfg")
    config["training"]["batcher"] = BY_TWO["training.batcher"]
    config.to_disk(tmp_path / "cnn.cfg")
    output = tmp_path / "training"
    args = [
        sys.executable,
        "scripts/train.py",
        str(tmp_path / "cnn.cfg"),
        str(output),
        "--lang",
        "en",
        "--corpus",
        str(tmp_path / "corpus"),
    ]
    result = subprocess.run(args + ["--epochs", "2"], cwd=PROJECT_DIR, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "50 words in 10 docs, ~10 words per update (5 updates per epoch); 2 epochs = 8 updates" in " ".join(
        result.stdout.split()
    )
    saved = load_config(output / "model-last" / "config.cfg")
    training = saved["training"]
    assert (training["max_steps"], training["eval_frequency"], training["logger"]["patience"]) == (8, 2, 4)
    assert training["patience"] == 0
    assert saved["training"]["optimizer"]["learn_rate"]["total_steps"] == 8  # the schedule ends with the run

    # --epochs 0 (the project's default var) keeps the config's 10 epochs
    result = subprocess.run(
        args + ["--epochs", "0", "--max-steps", "0"], cwd=PROJECT_DIR, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "10 epochs = 48 updates" in " ".join(result.stdout.split())
    assert load_config(output / "model-last" / "config.cfg")["training"]["max_steps"] == 48

"""The Hugging Face baseline of the benchmark, end to end on a tiny random BERT.

Nothing can be downloaded, so the test builds its own model, the tests' tiny
BERT (tests/tiny_models.py) trained on the test sentences, with a 16-piece
input limit.
Scores are meaningless; what is checked is that the recipe runs, saves a model
that loads, reports what it promises, and honours its time budget.
"""

import importlib.util
import json
import sys

import pytest
import torch
from processes import BENCH_DIR

pytest.importorskip("transformers")
from tiny_models import build_tiny_bert
from transformers import AutoModelForTokenClassification, AutoTokenizer, TrainerState

SCRIPT = BENCH_DIR / "hf_baseline.py"

# IOB1 like the English CoNLL files; entities open with I-, B- only between two
# entities of one type ("Hapoel Haifa" then "Hapoel Tel").
SENTENCES = [
    [("EU", "I-ORG"), ("rejects", "O"), ("German", "I-MISC"), ("call", "O"), (".", "O")],
    [("Peter", "I-PER"), ("Blackburn", "I-PER")],
    [("BRUSSELS", "I-LOC"), ("1996-08-22", "O")],
    [("In", "O"), ("Rome", "I-LOC"), ("Hapoel", "I-ORG"), ("Haifa", "I-ORG"), ("Hapoel", "B-ORG"), ("Tel", "I-ORG")],
    [("Germany", "I-LOC"), ("imported", "O"), ("47,600", "O"), ("sheep", "O"), ("from", "O"), ("Britain", "I-LOC")],
    [("Fischler", "I-PER"), ("proposed", "O"), ("EU-wide", "I-MISC"), ("measures", "O"), (".", "O")],
    [("The", "O"), ("European", "I-ORG"), ("Commission", "I-ORG"), ("said", "O"), ("on", "O"), ("Thursday", "O")],
    [
        ("Spanish", "I-MISC"),
        ("Farm", "O"),
        ("Minister", "O"),
        ("Loyola", "I-PER"),
        ("de", "I-PER"),
        ("Palacio", "I-PER"),
    ],
    [("Reuters", "I-ORG"), ("reported", "O"), ("from", "O"), ("London", "I-LOC"), (".", "O")],
    [("Werner", "I-PER"), ("Zwingmann", "I-PER"), ("told", "O"), ("Deutschlandfunk", "I-ORG"), ("radio", "O")],
    [("France", "I-LOC"), ("and", "O"), ("Britain", "I-LOC"), ("disagreed", "O"), (".", "O")],
    [("Bonn", "I-LOC"), ("backed", "O"), ("the", "O"), ("British", "I-MISC"), ("ban", "O")],
]
# Longer than the tiny model's 16-position limit, so prediction must truncate.
LONG_SENTENCE = [("Germany", "I-LOC")] + [("sheep", "O")] * 29


def load_script():
    """benchmarks/ is a folder of scripts, not a package: import it by path."""
    spec = importlib.util.spec_from_file_location("hf_baseline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["hf_baseline"] = module
    spec.loader.exec_module(module)
    return module


def conll_text(sentences) -> str:
    lines = ["-DOCSTART- -X- O O", ""]
    for sentence in sentences:
        lines += [f"{word} NNP I-NP {tag}" for word, tag in sentence] + [""]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def hf():
    return load_script()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conll")
    train = folder / "train.conll"
    dev = folder / "dev.conll"
    train.write_text(conll_text(SENTENCES), encoding="utf-8")
    dev.write_text(conll_text(SENTENCES[:4] + [LONG_SENTENCE]), encoding="utf-8")
    return train, dev


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    texts = [" ".join(word for word, _ in sentence) for sentence in SENTENCES]
    return str(build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), texts, vocab_size=200, model_max_length=16))


@pytest.fixture(scope="module")
def trained(hf, tiny_bert, data, tmp_path_factory):
    train, dev = data
    output_dir = tmp_path_factory.mktemp("fine_tuned")
    result = hf.train_and_evaluate(tiny_bert, train, dev, output_dir, epochs=1, batch_size=4, threads=1)
    return result, output_dir


def test_iob1_becomes_conlleval_iob2(hf):
    tags = ["I-ORG", "I-ORG", "B-ORG", "O", "I-PER", "I-LOC"]
    assert hf.iob2_tags(tags) == ["B-ORG", "I-ORG", "B-ORG", "O", "B-PER", "B-LOC"]


def test_only_first_subwords_carry_labels(hf, tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    words = [["Deutschlandfunk", "EU-wide", "radio"]]
    tags = [["B-ORG", "B-MISC", "O"]]
    label2id = {"O": 0, "B-ORG": 1, "B-MISC": 2}
    (feature,) = hf.encode_for_training(tokenizer, words, tags, label2id, max_length=16)
    word_ids = tokenizer(words[0], is_split_into_words=True).word_ids()
    assert len(word_ids) > len(words[0]) + 2, "the test needs a word split into several subwords"
    firsts = [i for i, w in enumerate(word_ids) if w is not None and (i == 0 or word_ids[i - 1] != w)]
    assert [feature["labels"][i] for i in firsts] == [1, 2, 0]
    assert all(label == hf.IGNORE_INDEX for i, label in enumerate(feature["labels"]) if i not in firsts)


def test_train_and_evaluate_reports_and_saves(trained):
    result, output_dir = trained
    for key in ("precision", "recall", "f1", "train_seconds", "train_words_per_second", "epochs_done", "steps"):
        assert key in result
    for key in ("precision", "recall", "f1"):
        assert 0.0 <= result[key] <= 1.0
    assert result["epochs_done"] == pytest.approx(1.0)
    assert result["steps"] == 3  # 12 sentences, batch size 4
    # the speed is the words of the epochs done over the training time
    words_trained = result["train_words"] * result["epochs_done"]
    assert result["train_words_per_second"] == pytest.approx(words_trained / result["train_seconds"])
    assert result["torch_threads"] == 1
    assert result["truncated_words"] > 0  # the 30-word dev sentence does not fit in 16 positions
    model = AutoModelForTokenClassification.from_pretrained(output_dir)
    assert model.config.id2label[0] == "O"
    assert {"B-LOC", "I-ORG", "B-MISC", "I-PER"} <= set(model.config.id2label.values())
    AutoTokenizer.from_pretrained(output_dir)


def test_time_budget_stops_training_early(hf, tiny_bert, data, tmp_path):
    train, dev = data
    result = hf.train_and_evaluate(tiny_bert, train, dev, tmp_path, epochs=3, batch_size=4, max_seconds=1e-6, threads=1)
    assert result["steps"] == 1
    assert result["epochs_done"] < 3
    assert 0.0 <= result["f1"] <= 1.0


def test_the_documented_command_runs_with_a_dev_curve_in_bfloat16(hf, tiny_bert, data, tmp_path):
    """The usage line of the script's docstring, as written, plus the options a
    full-file comparison with our bfloat16 training uses."""
    from typer.testing import CliRunner

    usage = next(line.strip() for line in hf.__doc__.splitlines() if "python benchmarks/hf_baseline.py" in line)
    assert usage.split()[2] == "--train", "the docstring's command starts with its options: the script has one command"
    train, dev = data
    output_json = tmp_path / "result.json"
    arguments = ["--train", str(train), "--dev", str(dev), "--output-dir", str(tmp_path / "model")]
    arguments += ["--output-json", str(output_json), "--model-dir", tiny_bert, "--epochs", "2", "--batch-size", "4"]
    arguments += ["--threads", "1", "--bf16", "--dev-curve"]
    outcome = CliRunner().invoke(hf.app, arguments)
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(output_json.read_text())
    assert result["config"]["bf16"] is True
    assert [point["epoch"] for point in result["curve"]] == [1.0, 2.0]
    assert [point["step"] for point in result["curve"]] == [3, 6]


class Stopped(Exception):
    """What the test raises in place of a kill."""


@pytest.mark.parametrize("stop_after", [6, 7])
def test_a_stopped_run_goes_on_from_its_last_checkpoint(hf, tiny_bert, data, tmp_path, monkeypatch, stop_after):
    """Killed right after its checkpoint of update 7 (of 9: 3 epochs of 3),
    or of update 6, an epoch's last, whose checkpoint must wait for the
    epoch's dev score, the same call goes on from there: its model and dev
    curve are those of a run never stopped, its seconds include those before
    the stop, and no checkpoint is left behind."""
    train, dev = data
    options = dict(epochs=3, batch_size=4, threads=1, dev_curve=True)
    whole = hf.train_and_evaluate(tiny_bert, train, dev, tmp_path / "whole", **options)

    def stop(self, args, state, control, **kwargs):
        self.last_save = 0.0
        if state.global_step == stop_after:
            raise Stopped

    stopped_dir = tmp_path / "stopped"
    with monkeypatch.context() as patch:
        patch.setattr(hf.SaveEvery, "on_save", stop)
        with pytest.raises(Stopped):
            hf.train_and_evaluate(tiny_bert, train, dev, stopped_dir, save_every=1e-9, **options)
    checkpoint = stopped_dir / f"checkpoint-{stop_after}"
    assert list(stopped_dir.glob("checkpoint-*")) == [checkpoint]
    seconds_before_stop = hf.SaveEvery.train_seconds_before(
        TrainerState.load_from_json(checkpoint / "trainer_state.json")
    )

    resumed = hf.train_and_evaluate(tiny_bert, train, dev, stopped_dir, save_every=1e-9, **options)
    assert resumed["steps"] == whole["steps"] == 9
    assert [point["step"] for point in resumed["curve"]] == [3, 6, 9]
    assert [point["f1"] for point in resumed["curve"]] == [point["f1"] for point in whole["curve"]]
    assert resumed["train_seconds"] > seconds_before_stop > 0
    assert not list(stopped_dir.glob("checkpoint-*"))
    whole_model = AutoModelForTokenClassification.from_pretrained(tmp_path / "whole").state_dict()
    resumed_model = AutoModelForTokenClassification.from_pretrained(stopped_dir).state_dict()
    assert all(torch.equal(whole_model[name], resumed_model[name]) for name in whole_model)


def test_checkpoints_of_other_settings_are_not_resumed(hf, tiny_bert, data, tmp_path, monkeypatch):
    train, dev = data
    stale = tmp_path / "checkpoint-7"
    stale.mkdir()
    (stale / "trainer_state.json").write_text("{}")
    (tmp_path / "run_settings.json").write_text(json.dumps({"epochs": 99}))
    assert hf.checkpoint_to_resume(tmp_path, {"epochs": 3}) is None
    assert not stale.exists()
    assert json.loads((tmp_path / "run_settings.json").read_text()) == {"epochs": 3}

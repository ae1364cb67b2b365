"""conll_ner/training/loop.py and resume.py: a run never stopped trains as
spaCy's own loop does, and a run stopped and started again ends where the
run never stopped ends, bit for bit."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import pytest
import spacy
from conftest import PROJECT_DIR
from fixtures import ENGLISH_TRAIN
from spacy.training.initialize import init_nlp
from spacy.training.loop import train as spacy_loop_train
from spacy.util import load_config, registry
from tiny_models import build_tiny_bert, fixture_texts

from conll_ner.data.conll import read_conll_file
from conll_ner.data.docbin import conll_to_docbin
from conll_ner.training.loop import RunStopped, train_resumable
from conll_ner.training.resume import RESUME_FOLDER

UPDATES = 12
INTERRUPT: Dict[str, Optional[int]] = {"at": None, "signal": None}


class Interrupted(KeyboardInterrupt):
    """A run cut short from outside (KeyboardInterrupt is not an Exception)."""


@registry.callbacks("test.interrupt_before_update.v1")
def create_interrupt():
    """A before_update callback that stops the run before update
    INTERRUPT["at"], or sends the process INTERRUPT["signal"] there."""

    def interrupt(nlp, info):
        if info["step"] == INTERRUPT["at"]:
            if INTERRUPT["signal"] is not None:
                os.kill(os.getpid(), INTERRUPT["signal"])
            else:
                raise Interrupted(f"stopped before update {info['step']}")

    return interrupt


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    source = root / "eng.train"
    source.write_text(ENGLISH_TRAIN, encoding="utf-8")
    doc_bin, _ = conll_to_docbin(read_conll_file(source).sentences, spacy.blank("en").vocab, n_sents=1)
    doc_bin.to_disk(root / "train.spacy")
    return root, build_tiny_bert(root / "bert", fixture_texts())


def config(root: Path, bert: Path, output: Path, **extra):
    """configs/transformer.cfg on the fixture's sentences with a tiny BERT:
    batches of a few sentences, so that the run crosses epochs."""
    overrides = {
        "paths.train": str(root / "train.spacy"),
        "paths.dev": str(root / "train.spacy"),
        "paths.train_log": str(output / "train_log.jsonl"),
        "components.transformer.model.name": str(bert),
        "training.max_steps": UPDATES,
        "training.eval_frequency": 4,
        "training.optimizer.learn_rate.total_steps": UPDATES,
        "training.optimizer.learn_rate.initial_rate": 1e-3,
        "training.optimizer.layer_decay": 0.9,
        "training.optimizer.encoder_layers": 2,
        "training.batcher.size": 40,
        "training.before_update": {"@callbacks": "test.interrupt_before_update.v1"},
        **extra,
    }
    return load_config(PROJECT_DIR / "configs" / "transformer.cfg", overrides=overrides, interpolate=False)


def weights(output: Path, folder: str = "model-last") -> Dict[str, bytes]:
    return {name: (output / folder / name / "model").read_bytes() for name in ("transformer", "ner")}


def evaluations(output: Path):
    lines = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    return [{key: value for key, value in line.items() if key != "seconds"} for line in lines]


def our_run(root, bert, output, *, interrupt_at=None, signal_at=None, save_every=1e-9, **extra) -> str:
    INTERRUPT["at"] = interrupt_at if signal_at is None else signal_at[1]
    INTERRUPT["signal"] = None if signal_at is None else signal_at[0]
    stdout = io.StringIO()
    nlp = init_nlp(config(root, bert, output, **extra))
    try:
        train_resumable(nlp, output, save_every_seconds=save_every, stdout=stdout, stderr=io.StringIO())
    finally:
        INTERRUPT["at"] = INTERRUPT["signal"] = None
    return " ".join(stdout.getvalue().split())  # as one line: wasabi wraps long messages


def test_a_run_never_stopped_trains_as_spacys_loop(setup, tmp_path):
    root, bert = setup
    ours, spacys = tmp_path / "ours", tmp_path / "spacy"
    our_run(root, bert, ours)
    spacys.mkdir()
    spacy_loop_train(init_nlp(config(root, bert, spacys)), spacys, stdout=io.StringIO(), stderr=io.StringIO())
    assert weights(ours) == weights(spacys)
    assert weights(ours, "model-best") == weights(spacys, "model-best")
    assert evaluations(ours) == evaluations(spacys)
    assert [line["step"] for line in evaluations(ours)] == [0, 4, 8, 12]
    assert not (ours / RESUME_FOLDER).exists()  # removed once the run ended


@pytest.mark.parametrize("interrupt_at", [3, 5, 9])
def test_a_run_stopped_and_started_again_ends_as_the_run_never_stopped(setup, tmp_path, interrupt_at):
    """Stopped after an evaluation (3: its model-best and losses), inside an
    epoch and past an epoch's end; started again in a new process's stead
    (a new pipeline, whose nodes and shims have other ids)."""
    root, bert = setup
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    our_run(root, bert, straight)
    with pytest.raises(Interrupted):
        our_run(root, bert, stopped, interrupt_at=interrupt_at)
    saved = json.loads((stopped / RESUME_FOLDER / "position.json").read_text())
    assert saved["updates"] == interrupt_at
    printed = our_run(root, bert, stopped)
    assert f"Resuming at update {interrupt_at:,}" in printed
    assert weights(stopped) == weights(straight)
    assert weights(stopped, "model-best") == weights(straight, "model-best")
    assert evaluations(stopped) == evaluations(straight)  # the log holds the evaluations before the stop too
    assert not (stopped / RESUME_FOLDER).exists()


def test_a_saved_run_of_another_config_is_not_resumed(setup, tmp_path):
    root, bert = setup
    output = tmp_path / "run"
    with pytest.raises(Interrupted):
        our_run(root, bert, output, interrupt_at=6)
    printed = our_run(root, bert, output, **{"training.dropout": 0.2})
    assert "holds a run of another config: starting afresh" in printed and "Resuming" not in printed
    assert [line["step"] for line in evaluations(output)] == [0, 4, 8, 12]


def test_without_saves_a_stopped_run_starts_again_from_the_start(setup, tmp_path):
    root, bert = setup
    output = tmp_path / "run"
    with pytest.raises(Interrupted):
        our_run(root, bert, output, interrupt_at=6, save_every=0)
    assert not (output / RESUME_FOLDER).exists()
    assert "Resuming" not in our_run(root, bert, output, save_every=0)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_after_its_update_with_the_state_saved(setup, tmp_path, number):
    """No periodic save falls in the run: the signal's save is the one the
    re-run goes on from."""
    root, bert = setup
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    our_run(root, bert, straight)
    before = signal.getsignal(number)  # another test of this process (Ray's, say) may have set its own
    with pytest.raises(RunStopped, match=f"{signal.Signals(number).name} after update 7"):
        our_run(root, bert, stopped, signal_at=(number, 6), save_every=1e9)
    assert json.loads((stopped / RESUME_FOLDER / "position.json").read_text())["updates"] == 7
    assert signal.getsignal(number) is not None and signal.getsignal(number) == before
    our_run(root, bert, stopped, save_every=1e9)
    assert weights(stopped) == weights(straight)


def test_the_train_step_stopped_by_sigterm_says_so_and_goes_on_when_run_again(tmp_path):
    """scripts/train.py as a scheduler stops it: exit status 130, the
    message, and the same command run again finishes the run."""
    from test_train_script import english_corpus

    corpus = english_corpus(tmp_path)
    output = tmp_path / "training"
    # one update per epoch of the fixture's sentences; every evaluation kept
    command = [
        sys.executable, "scripts/train.py", "configs/cnn.cfg", str(output), "--lang", "en", "--corpus", str(corpus),
        "--epochs", "400", "--training.eval_frequency", "100", "--save-every", "1000",
        "--training.logger.patience", "0", "--training.logger.max_zero_evals", "100",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the CNN's tiny products gain nothing from BLAS threads
    run = subprocess.Popen(
        command, cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log = output / "train_log.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_text().strip()) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)  # until the step-0 evaluation is written: the loop is running
    run.send_signal(signal.SIGTERM)
    printed = " ".join(run.communicate(timeout=120)[0].split())
    assert run.returncode == 130, printed[-2000:]
    assert "Stopped by SIGTERM after update" in printed and "run the same command again to go on" in printed
    stopped_at = json.loads((output / RESUME_FOLDER / "position.json").read_text())["updates"]
    again = subprocess.run(command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"Resuming at update {stopped_at:,}" in " ".join(again.stdout.split())
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == list(range(0, 401, 100))
    assert not (output / RESUME_FOLDER).exists()


def test_a_saved_run_whose_corpus_changed_says_so(setup, tmp_path):
    """Same config, other data (a convert step run again with other files):
    the saved epoch order does not fit, and the message says what to do."""
    root, bert = setup
    output = tmp_path / "run"
    with pytest.raises(Interrupted):
        our_run(root, bert, output, interrupt_at=6)
    position = output / RESUME_FOLDER / "position.json"
    saved = json.loads(position.read_text())
    saved["epoch_order"].append(len(saved["epoch_order"]))
    position.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=f"remove the run's {RESUME_FOLDER} folder to start afresh"):
        our_run(root, bert, output)

"""The evaluate step (conll_ner/evaluation/evaluate.py) on a small trained
pipeline: one DocBin, or a run's dev and test sets; and its script."""

import json
import subprocess
import sys

import pytest
import spacy
from conftest import PROJECT_DIR
from spacy.tokens import DocBin
from spacy.training import Example
from test_model_card import TRAIN
from wasabi import Printer

from conll_ner.evaluation.evaluate import evaluate_file, evaluate_run


@pytest.fixture(scope="module")
def pipeline_and_corpus(tmp_path_factory):
    """A pipeline with a few updates of a ner, and a corpus/{dev,test}/en.spacy of TRAIN."""
    tmp = tmp_path_factory.mktemp("evaluate")
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in TRAIN]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(tmp / "model")
    sentences = spacy.blank("en")
    sentences.add_pipe("sentencizer")
    docs = [sentences(text) for text, _ in TRAIN]
    for doc, (_, ents) in zip(docs, TRAIN):
        doc.ents = [doc.char_span(start, end, label=label) for start, end, label in ents]
    for split in ("dev", "test"):
        (tmp / "corpus" / split).mkdir(parents=True)
        DocBin(docs=docs).to_disk(tmp / "corpus" / split / "en.spacy")
    return tmp / "model", tmp / "corpus"


def test_evaluate_file_writes_the_metrics_files(pipeline_and_corpus, tmp_path):
    model, corpus = pipeline_and_corpus
    data = corpus / "dev" / "en.spacy"
    metrics = evaluate_file(str(model), data, tmp_path / "plain", Printer(no_print=True))
    assert json.loads((tmp_path / "plain" / "metrics.json").read_text()) == metrics
    assert "per_sentence" not in metrics and metrics["data"] == str(data)
    assert (tmp_path / "plain" / "metrics.md").is_file() and (tmp_path / "plain" / "predictions.conll").is_file()
    metrics = evaluate_file(str(model), data, tmp_path / "sentences", Printer(no_print=True), per_sentence=True)
    assert "per_sentence" in json.loads((tmp_path / "sentences" / "metrics.json").read_text())


def test_evaluate_run_scores_every_split_and_sums_them_up(pipeline_and_corpus, tmp_path):
    model, corpus = pipeline_and_corpus
    summary = evaluate_run(str(model), tmp_path / "run", "en", Printer(no_print=True), corpus_dir=corpus)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == summary
    assert set(summary) == {"dev-en", "test-en"}
    for name, scores in summary.items():
        full = json.loads((tmp_path / "run" / name / "metrics.json").read_text())
        assert "per_sentence" in full and full["ents_f"] == scores["ents_f"]
        assert scores["runtime"] == {"device": "cpu", "precision": "fp32"}


def test_the_script_evaluates_one_file_as_docs_data_md_shows(pipeline_and_corpus, tmp_path):
    """The run form is the workflow's evaluate step (test_workflow.py runs
    it); project.yml's lines are checked by test_documented_commands.py."""
    model, corpus = pipeline_and_corpus
    data, output = corpus / "dev" / "en.spacy", tmp_path / "out"
    command = [sys.executable, "scripts/evaluate.py", str(model), str(data), "--output", str(output), "--per-sentence"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"-> {output}/metrics.json" in " ".join(result.stdout.split())
    assert "per_sentence" in json.loads((output / "metrics.json").read_text())

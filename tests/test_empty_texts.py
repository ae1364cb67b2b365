"""Batches that mix empty, whitespace-only, one-token, punctuation-only and
long texts, on pipelines built from the shipped configs themselves (the
transformer with a tiny BERT and a tiny XLM-R, the CNN, the distilled CNN
student with project.yml's overrides): each text gets the entities it gets
alone, training takes a corpus with an empty Doc, and `spacy apply` takes a
JSONL file with empty texts. A change to a config's model is exercised here
the same way."""

import json
import subprocess
import sys
from typing import Dict, List, Tuple

import pytest
import spacy
import srsly
from conftest import PROJECT_DIR
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import load_model_from_config
from tiny_models import TRAIN, build_tiny_bert, build_tiny_xlmr, fixture_texts, shipped_pipeline, train

from conll_ner.packaging.int8 import add_int8_encoder, int8_tools_missing
from conll_ner.pipeline.prediction_runtime import prediction_runtime

# over one transformer window (128 pieces) and over one CNN batch of words
LONG = " ".join(["Peter Blackburn visited Brussels and the European Commission ."] * 25)
TEXTS = [
    "",
    "Peter Blackburn visited Brussels .",
    "   ",
    "EU",
    "\n\n",
    "...",
    "?!",
    LONG,
    "German call",
    "",
    "Brussels",
]
LISTENER = "components.ner.model.tok2vec.*.transformer.@architectures"
Entities = List[List[Tuple[int, int, str]]]


def student_overrides() -> Dict[str, object]:
    """project.yml's student_overrides var (`--a.b value` pairs, values as
    the spaCy CLI reads them: JSON, else a string) as overrides."""
    words = srsly.read_yaml(PROJECT_DIR / "project.yml")["vars"]["student_overrides"].split()
    assert words, "the student has no overrides: test the student's config some other way"

    def value(word: str) -> object:
        try:
            return srsly.json_loads(word)
        except ValueError:
            return word

    return {key.lstrip("-"): value(word) for key, word in zip(words[::2], words[1::2])}


def entities(docs) -> Entities:
    return [[(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents] for doc in docs]


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory) -> Dict[str, Language]:
    root = tmp_path_factory.mktemp("empty_texts")
    encoders = {
        "bert": build_tiny_bert(root / "bert", fixture_texts()),
        "xlmr": build_tiny_xlmr(root / "xlmr", fixture_texts()),
    }
    built = {
        f"transformer-{name}": shipped_pipeline("transformer", {"components.transformer.model.name": str(path)})
        for name, path in encoders.items()
    }
    built["cnn"] = shipped_pipeline("cnn", {})
    built["cnn-student"] = shipped_pipeline("cnn", student_overrides())
    pipelines = {}
    for name, nlp in built.items():
        train(nlp)
        if name.startswith("transformer") and int8_tools_missing() is None:
            add_int8_encoder(nlp)  # as the package step does
        # saved and loaded, as users meet them
        nlp.to_disk(root / name)
        pipelines[name] = spacy.load(root / name)
    return pipelines


@pytest.mark.parametrize("name", ["transformer-bert", "transformer-xlmr", "cnn", "cnn-student"])
def test_a_batch_mixing_empty_and_other_texts_gives_each_text_its_own_entities(pipelines, name):
    nlp = pipelines[name]
    if name.startswith("transformer") and int8_tools_missing() is None:
        assert prediction_runtime(nlp)["precision"] == "int8"
    alone = entities(nlp(text) for text in TEXTS)
    assert any(alone), "the pipeline predicts no entity: train it longer, or equal entities prove nothing"
    assert entities(nlp.pipe(TEXTS, batch_size=len(TEXTS))) == alone
    assert entities(nlp.pipe(TEXTS, batch_size=3)) == alone
    assert entities(nlp.pipe(TEXTS[::-1], batch_size=4)) == alone[::-1]


def test_the_torch_path_handles_the_mix_too(pipelines, tmp_path):
    """int8 off: the torch predictions, which GPUs run."""
    pipelines["transformer-bert"].to_disk(tmp_path / "pipeline")
    nlp = spacy.load(tmp_path / "pipeline", config={"components.transformer.model.cpu_int8": False})
    assert prediction_runtime(nlp)["precision"] != "int8"
    alone = entities(nlp(text) for text in TEXTS)
    assert entities(nlp.pipe(TEXTS, batch_size=len(TEXTS))) == alone


def test_a_pipeline_trained_before_the_fix_loads_with_it(pipelines, tmp_path):
    """Pipelines whose config names spacy-transformers' own listener crash on
    the mix; the config override of the docs loads their weights into ours."""
    nlp = pipelines["transformer-bert"]
    nlp.to_disk(tmp_path / "new")
    config = nlp.config.copy()
    config["components"]["ner"]["model"]["tok2vec"]["*"]["transformer"]["@architectures"] = (
        "spacy-transformers.TransformerListener.v1"
    )
    old = load_model_from_config(config).from_disk(tmp_path / "new")
    old.to_disk(tmp_path / "old")
    old = spacy.load(tmp_path / "old")
    alone = entities(old(text) for text in TEXTS)
    with pytest.raises(ValueError, match="input array dimensions"):
        list(old.pipe(TEXTS))
    fixed = spacy.load(tmp_path / "old", config={LISTENER: "conll_ner.TransformerListener.v1"})
    assert entities(fixed.pipe(TEXTS)) == alone == entities(nlp(text) for text in TEXTS)


def test_spacy_train_takes_a_corpus_with_an_empty_doc(tmp_path, pipelines):
    nlp = pipelines["transformer-bert"]
    docs = [Example.from_dict(nlp.make_doc(text), {"entities": ents}).reference for text, ents in TRAIN]
    assert [len(doc) for doc in docs][3] == 0
    DocBin(docs=docs * 4).to_disk(tmp_path / "train.spacy")
    transformer = nlp.get_pipe("transformer").model.attrs["name"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "train",
            str(PROJECT_DIR / "configs" / "transformer.cfg"),
            "--output",
            str(tmp_path / "out"),
            "--paths.train",
            str(tmp_path / "train.spacy"),
            "--paths.dev",
            str(tmp_path / "train.spacy"),
            "--paths.train_log",
            str(tmp_path / "log.jsonl"),
            "--components.transformer.model.name",
            transformer,
            "--training.max_steps",
            "6",
            "--training.eval_frequency",
            "3",
            "--training.batcher.size",
            "40",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "out" / "model-last" / "config.cfg").is_file()


@pytest.mark.parametrize("name", ["transformer-bert", "cnn"])
def test_spacy_apply_takes_a_jsonl_file_with_empty_texts(pipelines, tmp_path, name):
    nlp = pipelines[name]
    nlp.to_disk(tmp_path / "pipeline")
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in TEXTS))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "apply",
            str(tmp_path / "pipeline"),
            str(tmp_path / "in.jsonl"),
            str(tmp_path / "out.spacy"),
            "--text-key",
            "text",
            "--batch-size",
            "4",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(nlp.vocab))
    assert [doc.text for doc in docs] == TEXTS
    assert entities(docs) == entities(nlp(text) for text in TEXTS)

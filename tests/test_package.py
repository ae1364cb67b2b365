"""The package step (conll_ner/packaging/, run through scripts/package.py) on a
tiny pipeline trained from a local checkpoint."""

import json
import subprocess
import sys

import pytest
from conftest import PROJECT_DIR
from spacy.training import Example
from spacy.util import load_config, load_model_from_config
from test_model_card import LOG, METRICS, TRAIN
from tiny_models import build_tiny_bert, fixture_texts
from wasabi import Printer

from conll_ner.packaging.meta import drop_project_requirement, set_description
from conll_ner.packaging.naming import full_package_name, package_description, package_name, pipeline_encoder

SAVED_NAME = "acme/tiny-bert-cased"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """A multi pipeline whose encoder is a local folder with a saved hub id,
    packaged without --encoder: (checkpoint, output folder, package.py's run)."""
    tmp = tmp_path_factory.mktemp("package")
    checkpoint = build_tiny_bert(tmp / "site-packages" / "Tiny-BERT.v2", fixture_texts())
    hf_config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**hf_config, "_name_or_path": SAVED_NAME}))
    overrides = {
        "components.transformer.model.name": str(checkpoint),
        "nlp.lang": "xx",
        "components.transformer.model.mixed_precision": False,
    }
    config = load_config(PROJECT_DIR / "configs" / "transformer.cfg", overrides=overrides, interpolate=True)
    nlp = load_model_from_config(config)
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in TRAIN]
    optimizer = nlp.initialize(lambda: examples)
    nlp.update(examples, sgd=optimizer)
    nlp.to_disk(tmp / "model-best")
    (tmp / "train_log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in LOG))
    (tmp / "metrics.json").write_text(json.dumps(METRICS))
    output = tmp / "packages" / "multi-transformer"
    result = subprocess.run(
        [
            sys.executable,
            str(PROJECT_DIR / "scripts" / "package.py"),
            str(tmp / "model-best"),
            str(output),
            "--lang",
            "multi",
            "--version",
            "0.1.0",
            "--metrics",
            str(tmp / "metrics.json"),
            "--train-log",
            str(tmp / "train_log.jsonl"),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return checkpoint, output, result


def test_package_without_encoder_is_named_after_the_local_checkpoint(packaged):
    _, output, _ = packaged
    assert [path.name for path in output.iterdir()] == ["xx_ner_conll0203_tiny_bert_v2-0.1.0"]


def test_package_prints_how_to_install_its_wheel(packaged):
    _, output, result = packaged
    (wheel,) = output.glob("*/dist/*.whl")
    assert wheel.name.startswith("xx_ner_conll0203_tiny_bert_v2-0.1.0-")
    assert result.stdout.splitlines()[-1] == f"pip install {wheel}"


def test_the_package_carries_its_int8_encoder(packaged):
    pytest.importorskip("onnxruntime", reason="the int8 build needs onnxruntime and onnx (requirements-onnx.txt)")
    import spacy

    from conll_ner.pipeline.int8_encoder import ROW_SCHEME
    from conll_ner.pipeline.prediction_runtime import transformer_shims

    _, output, result = packaged
    package = output / "xx_ner_conll0203_tiny_bert_v2-0.1.0"
    pipeline = package / "xx_ner_conll0203_tiny_bert_v2" / "xx_ner_conll0203_tiny_bert_v2-0.1.0"
    (shim,) = transformer_shims(spacy.load(pipeline))
    assert shim.int8_graph is not None and shim.int8_settings["scheme"] == ROW_SCHEME
    card = (package / "README.md").read_text(encoding="utf8")
    assert "The package carries an int8 encoder" in card and "7-bit weights" in card
    # served scores need the dev and test files, which this packaging run lacks
    assert "lacked the dev and test files" in card


def test_the_card_shows_the_int8_encoders_served_scores(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="the int8 build needs onnxruntime and onnx (requirements-onnx.txt)")
    import spacy
    from spacy.tokens import DocBin
    from tiny_models import build_tiny_transformer_pipeline

    from conll_ner.packaging.int8 import write_int8_pipeline
    from conll_ner.packaging.model_card import write_model_card
    from conll_ner.packaging.served_scores import served_int8_scores
    from conll_ner.pipeline.cpu_features import int8_dot_products

    write_int8_pipeline(build_tiny_transformer_pipeline(tmp_path / "tiny"), tmp_path / "int8")
    sentences = spacy.blank("en")
    sentences.add_pipe("sentencizer")
    for split in ("dev", "test"):
        (tmp_path / "corpus" / split).mkdir(parents=True)
        docs = [sentences(text) for text, _ in TRAIN]
        for doc, (_, ents) in zip(docs, TRAIN):
            doc.ents = [doc.char_span(start, end, label=label) for start, end, label in ents]
        DocBin(docs=docs).to_disk(tmp_path / "corpus" / split / "en.spacy")
    quiet = Printer(no_print=True)
    assert served_int8_scores(tmp_path / "int8", tmp_path / "nothing", "en", quiet) is None
    served = served_int8_scores(tmp_path / "int8", tmp_path / "corpus", "en", quiet)
    assert set(served) == {"dev-en", "test-en"}
    # without the test file (the CoNLL test files are not everywhere), the dev file is still measured
    test_file = tmp_path / "corpus" / "test" / "en.spacy"
    test_file.rename(tmp_path / "test-en.spacy")
    assert set(served_int8_scores(tmp_path / "int8", tmp_path / "corpus", "en", quiet)) == {"dev-en"}
    (tmp_path / "test-en.spacy").rename(test_file)
    assert served["dev-en"]["runtime"] == {"device": "cpu", "precision": "int8"}
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in LOG))
    (tmp_path / "metrics.json").write_text(json.dumps({name: METRICS[name] for name in served}))

    def card_rows(served_int8: dict) -> dict:
        """The card's overall rows by split, with these served scores."""
        readme = write_model_card(
            tmp_path / "int8",
            tmp_path / "log.jsonl",
            tmp_path / "metrics.json",
            tmp_path / "card",
            package_name="en_ner_conll03_tiny",
            version="0.1.0",
            lang="en",
            dataset_names={"en": "conll2003"},
            served_int8=served_int8,
        )
        text = readme.read_text()
        assert "| F1 served (CPU int8) |" in text
        # measured here, whatever this CPU is, and the card says which kind it is
        assert f"on a CPU whose int8 dot products are: {int8_dot_products()}" in text
        rows = [line for line in text.splitlines() if line.startswith("| `conll2003`")]
        return {split: next(row for row in rows if f"| {split} |" in row) for split in ("validation", "test")}

    rows = card_rows(served)
    assert rows["validation"].endswith(f"| {served['dev-en']['ents_f'] * 100:.2f} |")
    assert rows["test"].endswith(f"| {served['test-en']['ents_f'] * 100:.2f} |")
    # served on the dev file alone: the test row says so
    assert card_rows({"dev-en": served["dev-en"]})["test"].endswith("| not measured |")


def test_card_names_the_local_checkpoint_portably(packaged):
    checkpoint, output, _ = packaged
    card = (output / "xx_ner_conll0203_tiny_bert_v2-0.1.0" / "README.md").read_text(encoding="utf8")
    assert f"- Encoder: `{SAVED_NAME}` (fine-tuned transformer, from a local checkpoint)" in card
    assert str(checkpoint.parent) not in card


def test_package_names_say_corpus_encoder_and_distillation():
    assert package_name("en", "minilm", distilled=False) == "ner_conll03_minilm"
    assert full_package_name("multi", "mbert", distilled=True) == "xx_ner_conll0203_mbert_distilled"
    assert package_description("es", "beto", None) == (
        "NER for es trained on CONLL02 with encoder beto; entity scores as conlleval computes them."
    )
    assert package_description("en", "cnn", {"teacher_pipeline": "en_ner_conll03_mbert"}) == (
        "NER for en trained on CONLL03 with encoder cnn, distilled from en_ner_conll03_mbert through silver data; "
        "entity scores as conlleval computes them."
    )


def test_pipeline_encoder_reads_the_checkpoint_from_the_config(packaged):
    checkpoint, output, _ = packaged
    model_dir = output.parent.parent / "model-best"
    assert pipeline_encoder(model_dir) == (str(checkpoint), "tiny_bert_v2")
    assert pipeline_encoder(model_dir, "mine") == (str(checkpoint), "mine")
    with pytest.raises(ValueError):
        pipeline_encoder(model_dir, "not a name!")


def test_meta_rewrites_keep_everything_else(tmp_path):
    meta_path = tmp_path / "meta.json"
    meta_path.write_text(json.dumps({"name": "x", "requirements": ["spacy-transformers>=1.4", "conll-ner>=0.1"]}))
    set_description(meta_path, "NER")
    drop_project_requirement(meta_path)
    assert json.loads(meta_path.read_text()) == {
        "name": "x",
        "requirements": ["spacy-transformers>=1.4"],
        "description": "NER",
    }


def test_the_package_loads_and_predicts_with_its_own_code_alone(packaged):
    """Where the package is installed, this project is not: its own copies of
    the scorer and of conll_ner/pipeline/ register what its config names (no
    entry points of the project, no import of conll_ner)."""
    _, output, _ = packaged
    name = "xx_ner_conll0203_tiny_bert_v2"
    script = f"""
import sys
import catalogue
catalogue.Registry.get_entry_point = lambda self, name, default=None: default
catalogue.Registry.get_entry_points = lambda self: {{}}
sys.modules["conll_ner"] = None  # not installed
sys.path.insert(0, {str(output / f"{name}-0.1.0")!r})
import {name} as package
nlp = package.load()
shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
print(type(shim).__module__, type(shim).__name__, len(nlp("EU rejects German call .")))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_DIR.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-3:] == [f"{name}.cpu_shim", "CPUTransformerShim", "5"]


def test_the_pipeline_code_imports_without_the_transformer_libraries():
    """Packaged CNN pipelines carry every module of conll_ner/pipeline/ too,
    where torch, transformers, spacy-transformers and onnxruntime may be
    absent."""
    script = """
import importlib, sys
for name in ("torch", "transformers", "spacy_transformers", "onnxruntime"):
    sys.modules[name] = None  # not installed
from conll_ner.packaging.pipeline_code import pipeline_modules
for module in pipeline_modules():
    importlib.import_module(f"conll_ner.pipeline.{module.stem}")
print(len(pipeline_modules()))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_DIR)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) > 5


def test_the_scores_of_one_file_are_refused_before_any_packaging_work(packaged, tmp_path):
    """evaluate.py MODEL FILE writes one file's scores; the card needs them by
    split and language, and the step says so before it builds anything."""
    _, output, _ = packaged
    one_file = tmp_path / "metrics.json"
    one_file.write_text(json.dumps(METRICS["dev-en"]))
    result = subprocess.run(
        [
            sys.executable, str(PROJECT_DIR / "scripts" / "package.py"), str(output.parent.parent / "model-best"),
            str(tmp_path / "packages"), "--lang", "en", "--version", "0.1.0", "--metrics", str(one_file),
            "--train-log", str(output.parent.parent / "train_log.jsonl"),
        ],
        capture_output=True, text=True, cwd=PROJECT_DIR,
    )  # fmt: skip
    assert result.returncode == 1
    said = " ".join(result.stdout.split())  # wasabi wraps long lines
    assert str(one_file) in said and "scripts/evaluate.py <model> --lang en" in said
    assert not (tmp_path / "packages").exists()

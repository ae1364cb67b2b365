"""Nothing but the explicit int8 build exports an encoder: training and
annotating with worker processes run with the export tools made unimportable
in every process they start (a `sitecustomize` on PYTHONPATH, which spawned
workers inherit), and still work."""

import json
import os
import subprocess
import sys

import pytest
from conftest import PROJECT_DIR
from tiny_models import build_tiny_transformer_pipeline, fixture_texts

from conll_ner.packaging.int8 import write_int8_pipeline

GUARD = """
import builtins
_import = builtins.__import__
EXPORT_TOOLS = ("conll_ner.packaging.int8", "onnxruntime.quantization", "onnxruntime.transformers")


def _guarded(name, *args, **kwargs):
    if name.startswith(EXPORT_TOOLS):
        raise ImportError(f"export tool imported: {name}")
    return _import(name, *args, **kwargs)


builtins.__import__ = _guarded
"""


@pytest.fixture(scope="module")
def guarded_env(tmp_path_factory):
    folder = tmp_path_factory.mktemp("guard")
    (folder / "sitecustomize.py").write_text(GUARD)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def test_the_guard_stops_an_export(guarded_env, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import conll_ner.packaging.int8"], capture_output=True, text=True, env=guarded_env
    )
    assert result.returncode != 0 and "export tool imported: conll_ner.packaging.int8" in result.stderr


def test_annotate_with_workers_on_an_int8_pipeline_exports_nothing(guarded_env, tmp_path):
    pytest.importorskip("onnxruntime", reason="the int8 build needs onnxruntime and onnx (requirements-onnx.txt)")
    pipeline = tmp_path / "int8"
    write_int8_pipeline(build_tiny_transformer_pipeline(tmp_path / "tiny"), pipeline)
    inputs = tmp_path / "input"
    inputs.mkdir()
    for number in range(3):
        (inputs / f"{number}.txt").write_text("".join(text.replace("\n", " ") + "\n" for text in fixture_texts()))
    result = subprocess.run(
        [
            sys.executable,
            "scripts/annotate.py",
            str(pipeline),
            str(inputs / "*.txt"),
            str(tmp_path / "output"),
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        env=guarded_env,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    shards = [tmp_path / "output" / f"{number}.jsonl" for number in range(3)]
    rows = [json.loads(line) for path in shards for line in path.open()]
    assert len(rows) == 3 * len(fixture_texts()) and not any(row.get("error") for row in rows)


def test_training_exports_nothing(guarded_env, tmp_path):
    import spacy
    from spacy.tokens import DocBin

    tiny = build_tiny_transformer_pipeline(tmp_path / "tiny")
    nlp = spacy.blank("en")
    docs = [nlp(text) for text in fixture_texts()]
    for doc in docs:
        doc.ents = [doc.char_span(0, len(doc[0].text), label="PER")]
    DocBin(docs=docs).to_disk(tmp_path / "train.spacy")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "train",
            "configs/transformer.cfg",
            "--paths.train",
            str(tmp_path / "train.spacy"),
            "--paths.dev",
            str(tmp_path / "train.spacy"),
            "--components.transformer.model.name",
            str(tiny.parent / "bert"),
            "--training.max_steps",
            "4",
            "--training.eval_frequency",
            "2",
            "--output",
            str(tmp_path / "trained"),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        env=guarded_env,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "trained" / "model-last" / "config.cfg").is_file()

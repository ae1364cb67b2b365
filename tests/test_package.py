"""scripts/package.py on a tiny pipeline trained from a local checkpoint."""

import json
import subprocess
import sys

import pytest
from conftest import PROJECT_DIR
from spacy.training import Example
from spacy.util import load_config, load_model_from_config
from test_model_card import LOG, METRICS, TRAIN
from tiny_models import build_tiny_bert, fixture_texts

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


def test_card_names_the_local_checkpoint_portably(packaged):
    checkpoint, output, _ = packaged
    card = (output / "xx_ner_conll0203_tiny_bert_v2-0.1.0" / "README.md").read_text(encoding="utf8")
    assert f"- Encoder: `{SAVED_NAME}` (fine-tuned transformer, from a local checkpoint)" in card
    assert str(checkpoint.parent) not in card

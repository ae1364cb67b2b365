"""The full mode's own parts (benchmarks/modes/full.py): ours measured as
its package ships it, and the report saying what it predicted in."""

import json

import spacy
from modes import full
from processes import RESULTS_DIR
from tiny_models import build_tiny_transformer_pipeline

from conll_ner.pipeline.prediction_runtime import prediction_runtime


def test_ours_is_measured_with_the_int8_encoder_the_package_step_builds(tmp_path):
    trained = build_tiny_transformer_pipeline(tmp_path)
    assert prediction_runtime(spacy.load(trained))["precision"] != "int8"
    packaged = full.as_packaged(str(trained), tmp_path / "work")
    assert prediction_runtime(spacy.load(packaged))["precision"] == "int8"
    # the trained pipeline is left as it was
    assert prediction_runtime(spacy.load(trained))["precision"] != "int8"


def test_the_report_names_the_precision_ours_predicted_in():
    stored = json.loads((RESULTS_DIR / "results.json").read_text())
    stored["spacy_trf"]["dev"]["runtime"] = {"device": "cpu", "precision": "int8"}
    report = full.report_markdown(stored)
    assert "on the pipeline as the package step ships it" in report and "it predicted in int8;" in report
    del stored["spacy_trf"]["dev"]["runtime"]
    assert "as its packages do;" in full.report_markdown(stored)

"""The whole workflow, convert -> train -> evaluate -> package, on the CPU with
tiny encoders built here, on the quirky fixtures of every language."""
import json
import os
import subprocess
import sys

import pytest
import spacy

from project_utils import copy_project, run_project, write_fixture_assets
from tiny_models import build_tiny_bert, build_tiny_xlmr, fixture_texts

pytestmark = pytest.mark.slow

QUICK = {"gpu_id": "-1", "max_steps": "6", "eval_frequency": "3", "n_sents": "2"}


@pytest.fixture(scope="module")
def tiny_encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    return {
        "bert": build_tiny_bert(root / "tiny-bert", fixture_texts()),
        "xlmr": build_tiny_xlmr(root / "tiny-xlmr", fixture_texts()),
    }


@pytest.mark.parametrize("encoder,lang", [("bert", "multi"), ("xlmr", "es")])
def test_workflow_all_end_to_end(tmp_path, tiny_encoders, encoder, lang, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub must never be needed
    project = copy_project(tmp_path / "project")
    write_fixture_assets(project, repeat=4)
    variables = dict(QUICK, lang=lang, transformer=str(tiny_encoders[encoder]), encoder=f"tiny{encoder}")
    result = run_project(project, "all", variables)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = f"{lang}-tiny{encoder}"

    nlp = spacy.load(project / "training" / run / "model-best")
    assert nlp.pipe_names == ["transformer", "ner"]
    assert nlp.lang == ("xx" if lang == "multi" else lang)
    # the Spanish fixture has no MISC entity
    assert set(nlp.get_pipe("ner").labels) == {"PER", "ORG", "LOC"} | ({"MISC"} if lang == "multi" else set())
    log_lines = (project / "training" / run / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log_lines] == [0, 3, 6]

    summary = json.loads((project / "metrics" / run / "metrics.json").read_text())
    languages = ["en", "es", "nl"] if lang == "multi" else [lang]
    assert set(summary) == {f"{split}-{l}" for split in ("dev", "test") for l in languages}
    for name, scores in summary.items():
        assert all(0.0 <= scores[key] <= 1.0 for key in ("ents_p", "ents_r", "ents_f", "ents_token_acc"))
        folder = project / "metrics" / run / name
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["ents_f"] == scores["ents_f"] and metrics["n_tokens"] > 0
        assert "| **overall (micro)** |" in (folder / "metrics.md").read_text()
        rows = [l for l in (folder / "predictions.conll").read_text().splitlines() if l]
        assert len(rows) == metrics["n_tokens"] and all(len(r.split()) == 3 for r in rows)

    wheels = list((project / "packages" / run).glob("*/dist/*.whl"))
    assert len(wheels) == 1
    spacy_lang = "xx" if lang == "multi" else lang
    corpus = {"multi": "conll0203", "es": "conll02"}[lang]
    assert wheels[0].name.startswith(f"{spacy_lang}_ner_{corpus}_tiny{encoder}-0.1.0")


def test_train_without_gpu_fails_early_and_says_how_to_use_the_cpu(tmp_path, tiny_encoders):
    project = copy_project(tmp_path / "project")
    write_fixture_assets(project)
    assert run_project(project, "convert").returncode == 0
    result = run_project(project, "train", {"transformer": str(tiny_encoders["bert"]), "gpu_id": "0"})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "No GPU 0 available" in output and "--vars.gpu_id -1" in output
    assert not (project / "training").exists() or not any((project / "training").rglob("model-best"))

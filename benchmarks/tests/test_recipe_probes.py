"""benchmarks/recipe_probes.py: a probe's entry from a run's train log and
saved config, stored by name, and rendered with its settings and curve."""

import json

import pytest
import recipe_probes
import typer
from processes import PROJECT_DIR, RESULTS_DIR
from spacy.util import load_config
from tiny_models import build_tiny_xlmr, fixture_texts


def fake_run(folder, encoder, rate, threshold, scores):
    """A training folder as the train step leaves it: model-last's config
    and one train-log line per evaluation."""
    config = load_config(
        PROJECT_DIR / "configs" / "transformer.cfg",
        overrides={
            "components.transformer.model.name": str(encoder),
            "components.transformer.model.freeze_word_embeddings_above": threshold,
            "training.optimizer.learn_rate.initial_rate": rate,
            "nlp.lang": "es",
        },
    )
    (folder / "model-last").mkdir(parents=True)
    config.to_disk(folder / "model-last" / "config.cfg")
    lines = [
        {"step": 10 * i, "seconds": 5 * i, "scores": {"ents_f": 100 * f}, "losses": {}} for i, f in enumerate(scores)
    ]
    (folder / "train_log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def test_probes_are_read_from_their_runs_stored_by_name_and_rendered(tmp_path):
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    rows = json.loads((encoder / "config.json").read_text())["vocab_size"]
    frozen = fake_run(tmp_path / "frozen", encoder, 1e-4, rows - 1, [0.05, 0.4, 0.6])
    dense = fake_run(tmp_path / "dense", encoder, 3e-4, rows, [0.05, 0.5, 0.55])
    results = tmp_path / "results.json"
    entry = recipe_probes.read_probe("frozen", frozen, "python scripts/train.py ...", "shared machine")
    assert entry["best_dev_f1"] == 0.6 and entry["updates"] == 20 and entry["seconds"] == 10
    assert entry["settings"]["vocabulary_rows"] == rows and entry["settings"]["peak_learning_rate"] == 1e-4
    recipe_probes.store(entry, results)
    recipe_probes.store(recipe_probes.read_probe("dense", dense, "python scripts/train.py ..."), results)
    recipe_probes.store(recipe_probes.read_probe("frozen", frozen, "again"), results)  # replaces by name
    stored = json.loads(results.read_text())
    assert list(stored["probes"]) == ["frozen", "dense"] and stored["probes"]["frozen"]["command"] == "again"

    report = recipe_probes.report_markdown(stored)
    assert (
        f"| frozen | es | `xlmr` | frozen ({rows:,} rows) | 0.0001 | 20 | 5.00 (0), 40.00 (10), 60.00 (20) |" in report
    )
    assert f"| dense | es | `xlmr` | trained ({rows:,} rows) | 0.0003 | 20 |" in report
    assert "`dense`: `python scripts/train.py ...`" in report


def test_the_stored_probes_are_in_benchmarks_md():
    path = RESULTS_DIR / "results_recipe_probes.json"
    report = recipe_probes.report_markdown(json.loads(path.read_text()))
    assert report in (PROJECT_DIR / "BENCHMARKS.md").read_text()


def test_a_recorded_run_carries_its_evaluations(tmp_path):
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    run = fake_run(tmp_path / "run", encoder, 1e-4, 100000, [0.05, 0.7])
    metrics = tmp_path / "int8" / "metrics.json"
    metrics.parent.mkdir()
    runtime = {"device": "cpu", "precision": "int8"}
    metrics.write_text(json.dumps({"ents_f": 0.701, "ents_p": 0.7, "ents_r": 0.702, "runtime": runtime, "speed": 1}))
    entry = recipe_probes.read_probe(
        "run", run, "spacy project run train ...", evaluations=recipe_probes.evaluation_options([f"int8={metrics}"])
    )
    assert entry["evaluations"]["int8"]["ents_f"] == 0.701 and entry["evaluations"]["int8"]["runtime"] == runtime
    assert "| int8 70.10 (int8) |" in recipe_probes.report_markdown({"probes": {"run": entry}})
    with pytest.raises(typer.BadParameter, match="NAME=PATH"):
        recipe_probes.evaluation_options([str(metrics)])

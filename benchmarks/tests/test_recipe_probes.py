"""benchmarks/recipe_probes.py: a probe's entry from a run's train log and
saved config, stored by name, and rendered with its settings and curve."""

import json

import pytest
import recipe_probes
import typer
from processes import PROJECT_DIR, RESULTS_DIR
from spacy.util import load_config
from tiny_models import build_tiny_xlmr, fixture_texts


def fake_run(folder, encoder, rate, threshold, scores, overrides=None):
    """A training folder as the train step leaves it: model-last's config
    and one train-log line per evaluation."""
    config = load_config(
        PROJECT_DIR / "configs" / "transformer.cfg",
        overrides={
            "components.transformer.model.name": str(encoder),
            "components.transformer.model.freeze_word_embeddings_above": threshold,
            "training.optimizer.learn_rate.initial_rate": rate,
            "nlp.lang": "es",
            **(overrides or {}),
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
        f"| frozen | es | `xlmr` | frozen ({rows:,} rows) | peak 0.0001, warmup 0.1 | 20 | "
        "5.00 (0), 40.00 (10), 60.00 (20) |" in report
    )
    assert f"| dense | es | `xlmr` | trained ({rows:,} rows) | peak 0.0003, warmup 0.1 | 20 |" in report
    assert "`dense`: `python scripts/train.py ...`" in report


def test_an_encoder_named_from_the_project_folder_is_found_whatever_folder_records_it(tmp_path, monkeypatch):
    """The workflow names its encoder relative to the project
    (assets/encoders/...): the record reads its vocabulary there, not from
    the folder the record command runs in, or a run recorded from another
    checkout would lose its word-embedding setting and drop out of the
    comparisons that match runs by recipe."""
    project = tmp_path / "project"
    encoder = build_tiny_xlmr(project / "assets" / "encoder", fixture_texts())
    rows = json.loads((encoder / "config.json").read_text())["vocab_size"]
    run = fake_run(project / "training" / "run", "assets/encoder", 1e-4, rows - 1, [0.05, 0.5])
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    entry = recipe_probes.read_probe("relative", run, "spacy project run train . ...", project_dir=project)
    assert entry["settings"]["transformer"] == "assets/encoder"
    assert entry["settings"]["vocabulary_rows"] == rows
    assert recipe_probes.embeddings_trained(entry["settings"]) is False


def test_a_probe_without_the_shape_feature_and_with_layer_decay_says_so(tmp_path):
    """The overrides of those probes (docs/recipes.md), read back from the saved config."""
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    listener_only = {"@architectures": "conll_ner.TransformerListener.v1", "grad_factor": 1.0, "upstream": "*"}
    overrides = {
        "components.ner.model.tok2vec": {**listener_only, "pooling": {"@layers": "reduce_mean.v1"}},
        "training.optimizer.@optimizers": "conll_ner.AdamWithLayerDecay.v1",
        "training.optimizer.layer_decay": 0.9,
        "training.optimizer.encoder_layers": 12,
        "training.optimizer.learn_rate.warmup_fraction": 0.2,
    }
    run = fake_run(tmp_path / "run", encoder, 1e-4, 100000, [0.05, 0.7], overrides)
    settings = recipe_probes.read_probe("variant", run, "python scripts/train.py ...")["settings"]
    assert settings["ner_features"] == ["transformer"] and settings["layer_decay"] == 0.9
    assert recipe_probes.recipe(settings) == "peak 0.0001, warmup 0.2, layer decay 0.9, no shape feature"
    assert settings["pooling"] == "reduce_mean.v1"
    first_piece = {"components.ner.model.tok2vec.*.transformer.pooling.@layers": "reduce_first.v1"}
    first = recipe_probes.read_probe(
        "first", fake_run(tmp_path / "first", encoder, 1e-4, 100000, [0.1], first_piece), "x"
    )
    assert recipe_probes.recipe(first["settings"]) == "peak 0.0001, warmup 0.1, pieces pooled by reduce_first.v1"
    upper = {"components.ner.model.use_upper": True}
    upper_run = recipe_probes.read_probe(
        "upper", fake_run(tmp_path / "upper", encoder, 1e-4, 100000, [0.1], upper), "x"
    )
    assert upper_run["settings"]["ner_model"] == {"extra_state_tokens": False, "use_upper": True, "hidden_width": 64}
    assert recipe_probes.recipe(upper_run["settings"]) == "peak 0.0001, warmup 0.1, NER use_upper true"
    wider = {"components.ner.model.hidden_width": 256}
    wider_run = recipe_probes.read_probe(
        "wider", fake_run(tmp_path / "wider", encoder, 1e-4, 100000, [0.1], wider), "x"
    )
    assert recipe_probes.recipe(wider_run["settings"]) == "peak 0.0001, warmup 0.1, NER hidden_width 256"
    # a run recorded before the settings named hidden_width: the configs' width, so no part of its recipe
    recorded_before = dict(wider_run["settings"], ner_model={"extra_state_tokens": False, "use_upper": False})
    assert recipe_probes.recipe(recorded_before) == "peak 0.0001, warmup 0.1"
    more_dropout = {"training.dropout": 0.2}
    dropout_run = recipe_probes.read_probe(
        "dropout", fake_run(tmp_path / "dropout", encoder, 1e-4, 100000, [0.1], more_dropout), "x"
    )
    assert recipe_probes.recipe(dropout_run["settings"]) == "peak 0.0001, warmup 0.1, dropout 0.2"
    head = {"training.optimizer.head_rate_scale": 5.0}
    head_run = recipe_probes.read_probe("head", fake_run(tmp_path / "head", encoder, 1e-4, 100000, [0.1], head), "x")
    assert recipe_probes.recipe(head_run["settings"]) == "peak 0.0001, warmup 0.1, NER model at 5x the peak rate"
    wide = {"components.transformer.model.get_spans.window": 256, "components.transformer.model.get_spans.stride": 192}
    wide_run = recipe_probes.read_probe("wide", fake_run(tmp_path / "wide", encoder, 1e-4, 100000, [0.1], wide), "x")
    assert wide_run["settings"]["windows"] == {"window": 256, "stride": 192}
    assert recipe_probes.recipe(wide_run["settings"]) == "peak 0.0001, warmup 0.1, windows of 256 tokens, stride 192"
    default = recipe_probes.probe_settings(fake_run(tmp_path / "default", encoder, 1e-4, 100000, [0.1]) / "model-last")
    assert default["ner_features"] == ["shape", "transformer"]
    # the config as written: the layer-decay optimizer at 1.0, one rate for the whole encoder, said as no decay
    assert default["optimizer"] == "conll_ner.AdamWithLayerDecay.v1" and default["layer_decay"] == 1.0
    assert default["head_rate_scale"] == 1.0
    assert recipe_probes.recipe(default) == "peak 0.0001, warmup 0.1"
    assert default["ner_model"] == recipe_probes.NER_MODEL_SETTINGS
    assert default["dropout"] == recipe_probes.TRANSFORMER_DROPOUT
    assert default["windows"] == recipe_probes.WINDOW_SETTINGS


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


def test_workflow_runs_go_to_the_multilingual_page_with_minutes_per_epoch(tmp_path):
    """Only runs of the documented workflow; epochs from the config's
    budget, minutes per epoch from the run's seconds."""
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    workflow = fake_run(tmp_path / "workflow", encoder, 1e-4, 100000, [0.05, 0.5, 0.7])
    config = load_config(workflow / "model-last" / "config.cfg")
    config["budget"]["epochs"] = 2.0  # as the train step writes it: a whole number of epochs shows as one
    config.to_disk(workflow / "model-last" / "config.cfg")
    results = {
        "probes": {
            "variant": recipe_probes.read_probe("variant", workflow, "python benchmarks/recipe_probes.py run ..."),
            "es-run": recipe_probes.read_probe("es-run", workflow, "spacy project run train . --vars.lang es"),
        }
    }
    assert [probe["name"] for probe in recipe_probes.workflow_runs(results)] == ["es-run"]
    page = tmp_path / "multilingual.md"
    page.write_text(f"# Page\n\n{recipe_probes.DOCS_START}\nold\n{recipe_probes.DOCS_END}\n\nafter\n")
    recipe_probes.render_docs(tmp_path, results)
    text = page.read_text()
    assert "| es-run | es | 2 | 20 | 50.00 (10), 70.00 (20) | - | 0 |" in text  # 10 s over 2 epochs
    assert "variant" not in text and "old" not in text and text.endswith("after\n")
    assert "`es-run`: `spacy project run train . --vars.lang es`" in text


def test_a_cnn_run_is_read_with_its_constant_rate(tmp_path):
    config = load_config(PROJECT_DIR / "configs" / "cnn.cfg", overrides={"training.optimizer.learn_rate": 0.001})
    (tmp_path / "model-last").mkdir()
    config.to_disk(tmp_path / "model-last" / "config.cfg")
    settings = recipe_probes.probe_settings(tmp_path / "model-last")
    assert settings["transformer"] is None and settings["peak_learning_rate"] == 0.001
    assert settings["epochs"] == config["budget"]["epochs"]
    assert (recipe_probes.encoder_name(settings), recipe_probes.word_embeddings(settings)) == ("none (CNN)", "-")


def with_machine(entry, cpu, flags):
    """A recorded run as if it had run on another CPU."""
    entry["machine"] = {**entry["machine"], "cpu": cpu, "x86_flags": flags}
    return entry


def recipes_page(folder):
    """A docs/recipes.md with each compared setting's markers around an old table."""
    page = folder / "recipes.md"
    sections = [f"{c.docs_start}\nold\n{c.docs_end}\n" for c in recipe_probes.COMPARED_SETTINGS]
    page.write_text("# Recipes\n\n" + "\n".join(sections))
    return page


def test_runs_that_differ_in_the_ner_models_rate_alone_are_set_side_by_side_by_cpu_kind(tmp_path):
    """One group per language, encoder, epochs and the rest of the recipe;
    one row per CPU kind and factor, with each run's seed and the mean; a
    run of another recipe, and a group with one factor only, are left out."""
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    amx = ["avx2", "avx512f", "avx512_bf16", "amx_tile"]
    bf16 = ["avx2", "avx512f", "avx512_bf16"]

    def run(name, scores, factor, cpu, flags, rate=2e-4, **overrides):
        folder = fake_run(
            tmp_path / name,
            encoder,
            rate,
            100000,
            scores,
            {"training.optimizer.head_rate_scale": factor, **overrides},
        )
        return with_machine(recipe_probes.read_probe(name, folder, "python scripts/train.py ..."), cpu, flags)

    runs = [
        run("one-xeon", [0.05, 0.80], 1.0, "Intel Xeon", amx),
        run("ten-xeon", [0.05, 0.78], 10.0, "Intel Xeon", amx),
        run("ten-epyc", [0.05, 0.82], 10.0, "AMD EPYC", bf16),
        run("ten-epyc-seed-1", [0.05, 0.84], 10.0, "AMD EPYC", bf16, **{"system.seed": 1}),
        run("one-epyc-other-rate", [0.05, 0.90], 1.0, "AMD EPYC", bf16, rate=3e-4),
    ]
    assert runs[3]["settings"]["seed"] == 1 and runs[0]["settings"]["seed"] == 0
    results = {"probes": {entry["name"]: entry for entry in runs}}
    table = recipe_probes.compared_markdown(results, recipe_probes.HEAD_RATE)
    rows = [line for line in table.splitlines()[2:] if line]
    assert rows == [
        "| es | `xlmr` | 4 | peak 0.0002, warmup 0.1 | AMD EPYC (AVX512-BF16, no AMX) | 10x "
        "| 82.00 (`ten-epyc`, seed 0), 84.00 (`ten-epyc-seed-1`, seed 1) | 83.00 |",
        "| es | `xlmr` | 4 | peak 0.0002, warmup 0.1 | Intel Xeon (AMX) | 1x | 80.00 (`one-xeon`, seed 0) | 80.00 |",
        "| es | `xlmr` | 4 | peak 0.0002, warmup 0.1 | Intel Xeon (AMX) | 10x | 78.00 (`ten-xeon`, seed 0) | 78.00 |",
    ]
    assert "### The NER model's rate, by CPU" in recipe_probes.report_markdown(results)
    # a run recorded before the setting is a 1x run of seed 0
    del runs[0]["settings"]["head_rate_scale"], runs[0]["settings"]["seed"]
    assert "| Intel Xeon (AMX) | 1x | 80.00 (`one-xeon`, seed 0) |" in recipe_probes.compared_markdown(
        results, recipe_probes.HEAD_RATE
    )
    page = recipes_page(tmp_path)
    recipe_probes.render_docs(tmp_path, results)
    assert recipe_probes.compared_markdown(results, recipe_probes.HEAD_RATE) in page.read_text()
    assert "old" not in page.read_text()
    # one factor only: nothing to set side by side
    del results["probes"]["one-xeon"]
    assert "Intel Xeon (AMX) | 1x" not in recipe_probes.compared_markdown(results, recipe_probes.HEAD_RATE)
    assert not recipe_probes.compared_groups({"probes": {"ten-xeon": runs[1]}}, recipe_probes.HEAD_RATE)


def test_runs_that_differ_in_parameter_averages_alone_are_set_side_by_side(tmp_path):
    """The same table for use_averages: the averaged run's recipe says so, a
    run recorded before the setting counts as without averages, and the
    head-rate table keeps runs of the two settings apart."""
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    bf16 = ["avx2", "avx512f", "avx512_bf16"]

    def run(name, scores, averages, **overrides):
        folder = fake_run(
            tmp_path / name, encoder, 2e-4, 100000, scores, {"training.optimizer.use_averages": averages, **overrides}
        )
        return with_machine(recipe_probes.read_probe(name, folder, "python scripts/train.py ..."), "AMD EPYC", bf16)

    runs = [
        run("plain", [0.05, 0.80], False),
        run("averaged", [0.05, 0.81], True),
        run("averaged-seed-1", [0.05, 0.85], True, **{"system.seed": 1}),
    ]
    assert runs[1]["settings"]["use_averages"] is True
    assert recipe_probes.recipe(runs[1]["settings"]) == "peak 0.0002, warmup 0.1, parameter averages"
    del runs[0]["settings"]["use_averages"]
    results = {"probes": {entry["name"]: entry for entry in runs}}
    rows = [line for line in recipe_probes.compared_markdown(results, recipe_probes.AVERAGES).splitlines()[2:] if line]
    assert rows == [
        "| es | `xlmr` | 4 | peak 0.0002, warmup 0.1 | AMD EPYC (AVX512-BF16, no AMX) | off "
        "| 80.00 (`plain`, seed 0) | 80.00 |",
        "| es | `xlmr` | 4 | peak 0.0002, warmup 0.1 | AMD EPYC (AVX512-BF16, no AMX) | on "
        "| 81.00 (`averaged`, seed 0), 85.00 (`averaged-seed-1`, seed 1) | 83.00 |",
    ]
    assert "### Parameter averages, by CPU" in recipe_probes.report_markdown(results)
    assert not recipe_probes.compared_groups(results, recipe_probes.HEAD_RATE)
    page = recipes_page(tmp_path)
    recipe_probes.render_docs(tmp_path, results)
    assert rows[1] in page.read_text() and "old" not in page.read_text()


@pytest.mark.parametrize("compared", recipe_probes.COMPARED_SETTINGS, ids=lambda compared: compared.key)
def test_the_stored_runs_by_each_compared_setting_are_in_the_recipes_page(compared):
    results = json.loads((RESULTS_DIR / "results_recipe_probes.json").read_text())
    page = (PROJECT_DIR / "docs" / "recipes.md").read_text()
    assert f"{compared.docs_start}\n{recipe_probes.compared_markdown(results, compared)}\n{compared.docs_end}" in page


def test_the_stored_workflow_runs_are_in_the_multilingual_page():
    results = json.loads((RESULTS_DIR / "results_recipe_probes.json").read_text())
    assert recipe_probes.workflow_runs_markdown(results) in (PROJECT_DIR / "docs" / "multilingual.md").read_text()


def trainer_result(folder, f1s, epochs, seed=None):
    """What benchmarks/hf_baseline.py writes with --dev-curve (before it
    wrote the seed, where `seed` is None)."""
    result = {
        "f1": f1s[-1],
        "steps": 12 * len(f1s),
        "train_seconds": 600.0 * len(f1s),
        "train_words_per_second": 321.4,
        "torch_threads": 1,
        "curve": [{"epoch": float(i + 1), "step": 12 * (i + 1), "f1": f1} for i, f1 in enumerate(f1s)],
        "config": {
            "model_dir": "/tmp/e5-trimmed-es",
            "epochs": epochs,
            "bf16": True,
            "learning_rate": 3e-5,
            "batch_size": 16,
            **({} if seed is None else {"seed": seed}),
        },
    }
    path = folder / f"hf-{seed}.json"
    path.write_text(json.dumps(result))
    return path


def test_trainer_runs_are_compared_with_our_run_and_the_cnn_of_their_language_and_epochs(tmp_path):
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    ours = fake_run(tmp_path / "ours", encoder, 1e-4, 100000, [0.05, 0.6, 0.8123])
    config = load_config(ours / "model-last" / "config.cfg")
    config["budget"]["epochs"] = 2
    config.to_disk(ours / "model-last" / "config.cfg")
    cnn = tmp_path / "cnn"
    (cnn / "model-last").mkdir(parents=True)
    load_config(PROJECT_DIR / "configs" / "cnn.cfg", overrides={"nlp.lang": "es"}).to_disk(
        cnn / "model-last" / "config.cfg"
    )
    (cnn / "train_log.jsonl").write_text(json.dumps({"step": 5, "seconds": 3, "scores": {"ents_f": 70.0}}) + "\n")
    results = tmp_path / "results.json"
    recipe_probes.store(recipe_probes.read_probe("es-ours", ours, "spacy project run train . --vars.lang es"), results)
    recipe_probes.store(recipe_probes.read_probe("es-cnn", cnn, "spacy project run train . --vars.config cnn"), results)
    with pytest.raises(ValueError, match="--dev-curve"):
        bare = tmp_path / "bare.json"
        bare.write_text(json.dumps({"curve": []}))
        recipe_probes.read_trainer_run("x", bare, "es", "python benchmarks/hf_baseline.py ...")
    path = trainer_result(tmp_path, [0.5, 0.7512], 2.0)
    recipe_probes.store_in(
        "trainer_runs", recipe_probes.read_trainer_run("es-hf", path, "es", "python hf ..."), results
    )
    stored = json.loads(results.read_text())
    assert list(stored["probes"]) == ["es-ours", "es-cnn"] and list(stored["trainer_runs"]) == ["es-hf"]

    table = recipe_probes.trainer_comparison_markdown(stored)
    assert (
        "| es | 2 | `xlmr`; peak 0.0001, warmup 0.1 | 81.23 (es-ours, seed 0) | 81.23 | 75.12 (es-hf, seed 0) | 75.12 "
        "| +6.11 (met: target +1) | 70.00 (es-cnn) | +11.23 (met: target +5) |" in table
    )
    # 1,200 s over 2 epochs
    assert (
        "| es-hf | es | `e5-trimmed-es` | 3e-05, batch 16, bf16 autocast | 0 | 24 | 50.00 (1), 75.12 (2) | 10 | 321 |"
        in table
    )
    assert "`es-hf`: `python hf ...`" in table
    for rendered in (recipe_probes.report_markdown(stored), recipe_probes.workflow_runs_markdown(stored)):
        assert table in rendered
    # a Trainer run whose epochs no run of ours has is listed as such
    other = recipe_probes.read_trainer_run("es-hf-3", trainer_result(tmp_path, [0.7], 3.0), "es", "python hf ...")
    table = recipe_probes.trainer_comparison_markdown({**stored, "trainer_runs": {"es-hf-3": other}})
    assert "| es | 3 | - | not run | - | 70.00 (es-hf-3, seed 0) | 70.00 | - | 70.00 (es-cnn) | - |" in table


def test_runs_of_several_seeds_are_compared_by_their_means(tmp_path):
    """Runs that differ in their seed alone share a row on each side and the
    margins compare the means; another recipe of ours gets a row of its own."""
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    results = tmp_path / "results.json"
    for name, rate, scores, overrides in (
        ("ours-seed-0", 1e-4, [0.05, 0.80], None),
        ("ours-seed-1", 1e-4, [0.05, 0.84], {"system.seed": 1}),
        ("ours-3e-4", 3e-4, [0.05, 0.90], None),
    ):
        run = fake_run(tmp_path / name, encoder, rate, 100000, scores, overrides)
        recipe_probes.store(recipe_probes.read_probe(name, run, "python scripts/train.py ..."), results)
    for seed, f1 in ((None, 0.79), (1, 0.78)):
        path = trainer_result(tmp_path, [0.5, f1], 4.0, seed)
        trainer = recipe_probes.read_trainer_run(f"hf-{seed}", path, "es", "python hf ...")
        assert trainer["seed"] == (seed or 0)
        recipe_probes.store_in("trainer_runs", trainer, results)

    table = recipe_probes.trainer_comparison_markdown(json.loads(results.read_text()))
    trainer_cells = "| 79.00 (hf-None, seed 0), 78.00 (hf-1, seed 1) | 78.50 |"
    assert (
        "| es | 4 | `xlmr`; peak 0.0001, warmup 0.1 | 80.00 (ours-seed-0, seed 0), 84.00 (ours-seed-1, seed 1) "
        f"| 82.00 {trainer_cells} +3.50 (met: target +1) | not run | - |" in table
    )
    assert (
        f"| es | 4 | `xlmr`; peak 0.0003, warmup 0.1 | 90.00 (ours-3e-4, seed 0) | 90.00 {trainer_cells} "
        "+11.50 (met: target +1) |" in table
    )
    assert table.count("| es | 4 |") == 2
    assert "| hf-1 | es | `e5-trimmed-es` | 3e-05, batch 16, bf16 autocast | 1 |" in table


def test_a_margin_below_its_target_says_missed():
    assert recipe_probes.target_cell(-1.44, recipe_probes.TRAINER_MARGIN) == "-1.44 (missed: target +1)"
    assert recipe_probes.target_cell(5.0, recipe_probes.CNN_MARGIN) == "+5.00 (met: target +5)"


def test_the_readme_shows_per_language_the_trainer_run_of_the_documented_epochs_beside_our_latest_run_of_them():
    import readme_table

    machine = {"cores": 2, "native_bfloat16": True, "int8_dot_products": False, "x86_flags": ["avx2"]}

    def ours(name, lang, epochs, date, f1, transformer="e5"):
        settings = {"lang": lang, "epochs": epochs, "transformer": transformer, "peak_learning_rate": 2e-4}
        command = "spacy project run train ." if transformer is None else "python scripts/train.py"
        return {"name": name, "date": date, "machine": machine, "settings": settings, "command": command,
                "curve": [{"dev_f1": 0.1}, {"dev_f1": f1}]}  # fmt: skip

    def trainer(lang, epochs, f1):
        return {"name": f"{lang}-trainer-{epochs}", "lang": lang, "epochs": epochs, "dev_f1": f1}

    results = {
        "probes": {
            "nl-old": ours("nl-old", "nl", 6.0, "2026-12-01T00:00:00", 0.80),
            "nl-new": ours("nl-new", "nl", 6.0, "2026-12-03T00:00:00", 0.88),
            "nl-4": ours("nl-4", "nl", 4.0, "2026-12-04T00:00:00", 0.90),
            "nl-cnn": ours("nl-cnn", "nl", 10, "2026-12-02T00:00:00", 0.70, transformer=None),
            "es-4": ours("es-4", "es", 4.0, "2026-12-04T00:00:00", 0.85),
        },
        "trainer_runs": {
            "a": trainer("nl", 4.0, 0.86),
            "b": trainer("nl", 6.0, 0.875),
            "c": trainer("es", 6.0, 0.83),  # no run of ours for 6 epochs: no row
        },
    }
    table = readme_table.full_files_table(results)
    rows = [line for line in table.splitlines() if line.startswith("| nl") or line.startswith("| es")]
    assert rows == ["| nl | 6 | 88.00 (`nl-new`; peak 0.0002) | 87.50 | 70.00 (10 epochs) |"]
    # a later probe of a variant recipe does not replace the documented command's recipe
    documented = ours("nl-documented", "nl", 6.0, "2026-12-03T12:00:00", 0.87)
    documented["command"] = "spacy project run train . --vars.lang nl --vars.epochs 6"
    variant = ours("nl-variant", "nl", 6.0, "2026-12-05T00:00:00", 0.86)
    variant["settings"]["pooling"] = "reduce_first.v1"
    results["probes"].update({"nl-documented": documented, "nl-variant": variant})
    rows = [line for line in readme_table.full_files_table(results).splitlines() if line.startswith("| nl")]
    assert rows == ["| nl | 6 | 87.00 (`nl-documented`; peak 0.0002) | 87.50 | 70.00 (10 epochs) |"]
    # nor does a later probe of the documented recipe with another seed
    other_seed = ours("nl-seed-1", "nl", 6.0, "2026-12-06T00:00:00", 0.85)
    other_seed["settings"]["seed"] = 1
    results["probes"]["nl-seed-1"] = other_seed
    rows = [line for line in readme_table.full_files_table(results).splitlines() if line.startswith("| nl")]
    assert rows == ["| nl | 6 | 87.00 (`nl-documented`; peak 0.0002) | 87.50 | 70.00 (10 epochs) |"]
    del results["probes"]["nl-seed-1"]
    # nor does a longer Trainer run, beside a probe of ours at its epochs: the
    # documented command's epochs stay
    results["probes"]["nl-8"] = ours("nl-8", "nl", 8.0, "2026-12-06T00:00:00", 0.86)
    results["trainer_runs"]["d"] = trainer("nl", 8.0, 0.89)
    rows = [line for line in readme_table.full_files_table(results).splitlines() if line.startswith("| nl")]
    assert rows == ["| nl | 6 | 87.00 (`nl-documented`; peak 0.0002) | 87.50 | 70.00 (10 epochs) |"]
    del results["probes"]["nl-8"], results["trainer_runs"]["d"]
    # nor does a later run of the workflow at the config's epochs (the joint
    # comparison's per-language runs), which the documented command is not
    at_config_epochs = ours("nl-workflow-4", "nl", 4.0, "2026-12-07T00:00:00", 0.85)
    at_config_epochs["command"] = "spacy project run train . --vars.lang nl"
    results["probes"]["nl-workflow-4"] = at_config_epochs
    rows = [line for line in readme_table.full_files_table(results).splitlines() if line.startswith("| nl")]
    assert rows == ["| nl | 6 | 87.00 (`nl-documented`; peak 0.0002) | 87.50 | 70.00 (10 epochs) |"]
    del results["probes"]["nl-workflow-4"]
    # without the documented run, the latest run stands
    del results["probes"]["nl-documented"]
    rows = [line for line in readme_table.full_files_table(results).splitlines() if line.startswith("| nl")]
    assert rows == [
        "| nl | 6 | 86.00 (`nl-variant`; peak 0.0002, pieces pooled by reduce_first.v1) | 87.50 | 70.00 (10 epochs) |"
    ]
    assert "2 CPU cores (native bfloat16: yes" in table
    assert readme_table.full_files_table({"probes": {}, "trainer_runs": {}}) == ""
    assert readme_table.full_files_table(None) == ""


def test_the_documented_command_of_a_language_is_read_from_the_multilingual_page(tmp_path):
    import readme_table

    # the page as it stands: Spanish and Dutch for 6 epochs, the joint at the config's
    for lang in ("es", "nl"):
        command = readme_table.documented_command(lang)
        assert command.startswith("spacy project run all . ") and readme_table.command_var(command, "epochs") == "6"
    assert readme_table.command_var(readme_table.documented_command("multi"), "epochs") is None
    page = tmp_path / "multilingual.md"
    page.write_text("Run `spacy project run all . --vars.lang nl` like this:\n\n```bash\n"
                    "spacy project run all . --vars.lang nl --vars.epochs 8\n```\n", encoding="utf8")  # fmt: skip
    assert readme_table.command_var(readme_table.documented_command("nl", page), "epochs") == "8"
    assert readme_table.documented_command("es", page) is None


def test_a_joint_run_is_compared_per_language_with_our_run_of_that_language_alone(tmp_path):
    """Best models scored by scripts/evaluate.py on both sides; only a run
    of the same encoder, epochs and recipe counts as the language's own."""
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())

    def metrics(name, f1):
        path = tmp_path / "metrics" / name / "metrics.json"
        path.parent.mkdir(parents=True)
        runtime = {"device": "cpu", "precision": "bfloat16"}
        path.write_text(json.dumps({"ents_f": f1, "ents_p": f1, "ents_r": f1, "runtime": runtime}))
        return f"{path.parent.name.split('_')[-1]}={path}"

    joint = fake_run(tmp_path / "joint", encoder, 2e-4, 100000, [0.05, 0.85], {"nlp.lang": "xx"})
    nl = fake_run(tmp_path / "nl", encoder, 2e-4, 100000, [0.05, 0.87], {"nlp.lang": "nl"})
    es_other_recipe = fake_run(tmp_path / "es", encoder, 1e-4, 100000, [0.05, 0.80], {"nlp.lang": "es"})
    evaluations = recipe_probes.evaluation_options(
        [metrics("j_dev-en", 0.9), metrics("j_dev-es", 0.81), metrics("j_dev-nl", 0.8655)]
    )
    results = {
        "probes": {
            "multi": recipe_probes.read_probe("multi", joint, "spacy project run train . --vars.lang multi", "", evaluations),
            "nl-alone": recipe_probes.read_probe(
                "nl-alone", nl, "python scripts/train.py", "", recipe_probes.evaluation_options([metrics("n_torch", 0.88)])
            ),
            "es-alone": recipe_probes.read_probe(
                "es-alone", es_other_recipe, "python scripts/train.py", "",
                recipe_probes.evaluation_options([metrics("e_torch", 0.83)]),
            ),
        }
    }  # fmt: skip
    assert [run["name"] for run in recipe_probes.joint_runs(results)] == ["multi"]
    assert "| multi | multi |" in recipe_probes.workflow_runs_markdown(results)  # as the workflow names it, not xx
    table = recipe_probes.joint_comparison_markdown(results)
    epochs = recipe_probes.epochs_cell(results["probes"]["multi"])
    rows = [line for line in table.splitlines() if line.startswith(("| en", "| es", "| nl"))]
    recipe = "peak 0.0002, warmup 0.1; nl x2 per epoch"  # the config's language weights
    assert rows == [
        f"| en | {epochs} | {recipe} | 90.00 (multi) | not run | - |",
        f"| es | {epochs} | {recipe} | 81.00 (multi) | not run | - |",  # its es run: another recipe
        f"| nl | {epochs} | {recipe} | 86.55 (multi) | 88.00 (nl-alone) | -1.45 (missed: target -1) |",
    ]
    for rendered in (recipe_probes.report_markdown(results), recipe_probes.workflow_runs_markdown(results)):
        assert table in rendered
    # recorded while still training (or stopped by hand): how far it got, and no verdict yet
    unfinished = recipe_probes.read_probe("multi", joint, "spacy project run ...", "", evaluations, unfinished=True)
    unfinished["settings"]["epochs"], unfinished["settings"]["max_steps"] = 4.0, 40  # 10 updates so far
    partial = {"probes": {**results["probes"], "multi": unfinished}}
    table = recipe_probes.joint_comparison_markdown(partial)
    assert "| nl | 1 of 4, unfinished |" in table and "| -1.45 (joint unfinished) |" in table
    assert "| multi | multi | 1 of 4, unfinished | 10 |" in recipe_probes.workflow_runs_markdown(partial)
    # nor does an unfinished run of one language stand for it
    results["probes"]["nl-alone"]["unfinished"] = True
    assert f"| nl | {epochs} | {recipe} | 86.55 (multi) | not run | - |" in (
        recipe_probes.joint_comparison_markdown(results)
    )
    results["probes"]["nl-alone"]["unfinished"] = False
    # a joint run that read each language once (as runs before the setting did) says so, and is set beside
    # the same per-language runs
    unweighted = fake_run(
        tmp_path / "unweighted", encoder, 2e-4, 100000, [0.05, 0.86], {"nlp.lang": "xx", "corpora.train.copies.nl": 1}
    )
    entry = recipe_probes.read_probe("multi-1x", unweighted, "python scripts/train.py --lang multi", "", evaluations)
    assert entry["settings"]["language_copies"] == {} and results["probes"]["multi"]["settings"]["language_copies"] == {
        "nl": 2
    }
    table = recipe_probes.joint_comparison_markdown({"probes": {**results["probes"], "multi-1x": entry}})
    once = "peak 0.0002, warmup 0.1; each language once per epoch"
    assert f"| nl | {epochs} | {once} | 86.55 (multi-1x) | 88.00 (nl-alone) | -1.45 (probe) |" in table
    # nor are the two set side by side as one recipe at two NER-model rates: they read Dutch differently
    entry["settings"]["head_rate_scale"] = 10.0
    assert not recipe_probes.compared_groups(
        {"probes": {"multi": results["probes"]["multi"], "multi-1x": entry}}, recipe_probes.HEAD_RATE
    )
    weighted = results["probes"]["multi"]
    twin = {**weighted, "name": "multi-20x", "settings": {**weighted["settings"], "head_rate_scale": 20.0}}
    table = recipe_probes.compared_markdown({"probes": {"multi": weighted, "multi-20x": twin}}, recipe_probes.HEAD_RATE)
    assert "| multi |" in table and "; nl x2 per epoch |" in table
    assert recipe_probes.read_probe("nl", nl, "python scripts/train.py")["settings"]["language_copies"] == {}
    no_joint = {"probes": {"nl-alone": results["probes"]["nl-alone"]}}
    assert "en+es+nl" not in recipe_probes.report_markdown(no_joint) + recipe_probes.workflow_runs_markdown(no_joint)


def test_the_readme_shows_the_joint_run_once_one_is_recorded():
    import readme_table

    machine = {"cores": 2, "native_bfloat16": True, "int8_dot_products": True, "x86_flags": ["avx512_vnni"]}
    settings = {"transformer": "e5", "epochs": 4.0, "peak_learning_rate": 2e-4}
    score = {"ents_f": 0.9, "runtime": {"precision": "bfloat16"}}
    joint = {"name": "multi", "date": "2026-12-03", "machine": machine, "settings": {**settings, "lang": "xx"},
             "evaluations": {"dev-en": score}, "command": "spacy project run train . --vars.lang multi"}  # fmt: skip
    results = {"probes": {"multi": joint}}
    # a probe of the joint pipeline (not the documented command) is BENCHMARKS.md's, not the README's
    probe = {**joint, "name": "multi-probe", "command": "python scripts/train.py configs/transformer.cfg --lang multi"}
    assert readme_table.joint_files_table({"probes": {"multi-probe": probe}}) == ""
    table = readme_table.joint_files_table({"probes": {"multi": joint, "multi-probe": probe}})
    assert "multi-probe" not in table
    assert table.startswith("One pipeline for English, Spanish and Dutch") and "2 CPU cores" in table
    assert recipe_probes.joint_comparison_markdown(results).rstrip("\n") in table
    assert "| en | 4 | peak 0.0002; each language once per epoch | 90.00 (multi) | not run | - |" in table
    assert readme_table.joint_files_table({"probes": {}}) == "" and readme_table.joint_files_table(None) == ""
    # a run of one language alone on another kind of CPU: the header names both kinds
    other_cpu = {"cores": 2, "native_bfloat16": False, "int8_dot_products": False, "x86_flags": ["avx2"]}
    alone = {"name": "en-alone", "date": "2026-12-04", "machine": other_cpu, "settings": {**settings, "lang": "en"},
             "evaluations": {"torch": score}, "command": "python scripts/train.py --lang en"}  # fmt: skip
    table = readme_table.joint_files_table({"probes": {"multi": joint, "en-alone": alone}})
    assert "| en | 4 | peak 0.0002; each language once per epoch | 90.00 (multi) | 90.00 (en-alone) |" in table
    assert "CPUs of 2 kinds (2 cores, native bfloat16: yes" in table and "; 2 cores, native bfloat16: no" in table


@pytest.mark.parametrize("n_sents, said", [(20, "Docs of 20 sentences"), (0, "whole documents as Docs"), (10, None)])
def test_a_probe_on_docs_of_other_sizes_says_so(tmp_path, n_sents, said):
    """The convert step's n_sents, read from the statistics beside the run's
    training corpus (a relative path from the project folder): a probe on
    other Docs is no run of the documented recipe."""
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    project = tmp_path / "project"
    (project / "corpus-x" / "train").mkdir(parents=True)
    (project / "corpus-x" / "train" / "nl.stats.json").write_text(json.dumps({"n_sents": n_sents}))
    run = fake_run(project / "training" / "x", encoder, 2e-4, 100000, [0.1], {"paths.train": "corpus-x/train/nl.spacy"})
    entry = recipe_probes.read_probe("x", run, "python scripts/train.py ...")
    assert entry["settings"]["sentences_per_doc"] == n_sents
    assert recipe_probes.recipe(entry["settings"]).endswith(said or "warmup 0.1")
    # found from another folder only when told where the run's paths start
    moved = tmp_path / "elsewhere" / "x"
    moved.parent.mkdir()
    run.rename(moved)
    assert recipe_probes.read_probe("x", moved, "...")["settings"]["sentences_per_doc"] is None
    assert recipe_probes.read_probe("x", moved, "...", project_dir=project)["settings"]["sentences_per_doc"] == n_sents


def test_a_probe_of_the_encoders_own_settings_names_them(tmp_path):
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    overrides = {
        "components.transformer.model.transformer_config": {
            "attention_probs_dropout_prob": 0.0,
            "attn_implementation": "eager",
        }
    }
    run = recipe_probes.read_probe("a", fake_run(tmp_path / "a", encoder, 2e-4, 100000, [0.1], overrides), "x")
    assert run["settings"]["encoder_config"] == {"attention_probs_dropout_prob": 0.0, "attn_implementation": "eager"}
    # how attention is computed is not part of the recipe
    assert recipe_probes.recipe(run["settings"]) == "peak 0.0002, warmup 0.1, encoder attention_probs_dropout_prob 0"
    default = recipe_probes.read_probe("b", fake_run(tmp_path / "b", encoder, 2e-4, 100000, [0.1]), "x")
    assert default["settings"]["encoder_config"] == {}
    assert recipe_probes.recipe(default["settings"]) == "peak 0.0002, warmup 0.1"


def test_runs_that_train_what_the_other_freezes_do_not_share_a_recipe(tmp_path):
    """A copy trimmed to the data's pieces trains the word embeddings the
    full vocabulary freezes: the same recipe line, not the same recipe, so
    such a probe never stands for the documented command's runs."""
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    rows = json.loads((encoder / "config.json").read_text())["vocab_size"]
    frozen = recipe_probes.read_probe("f", fake_run(tmp_path / "f", encoder, 2e-4, rows - 1, [0.1]), "x")["settings"]
    trained = recipe_probes.read_probe("t", fake_run(tmp_path / "t", encoder, 2e-4, rows, [0.1]), "x")["settings"]
    assert recipe_probes.recipe(frozen) == recipe_probes.recipe(trained)
    assert not recipe_probes.same_recipe(frozen, trained)
    assert recipe_probes.same_recipe(frozen, frozen) and recipe_probes.same_recipe(trained, trained)

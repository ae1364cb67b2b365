"""Controlled training runs on a full CoNLL training file: the default
recipe and variants of it (frozen or trained word embeddings, the peak
rate, ...) at the same number of updates, each with its dev curve, so that
the defaults for an encoder follow a measurement.

Each probe is the train step as the workflow runs it (`scripts/train.py`
with the config, lang, transformer and epochs), plus the config overrides
that make the variant. `run` trains a probe and records it; `record` records
a run made by hand with the command given. Both write
benchmarks/results/results_recipe_probes.json (one entry per probe name, with its
command, machine, date and curve), which BENCHMARKS.md renders.
`record-trainer` records a full-file run of the Hugging Face Trainer recipe
(benchmarks/hf_baseline.py) beside them, so that the documented command's
runs are compared with the Trainer's at the same epochs, on the same files.

    python benchmarks/recipe_probes.py run es-frozen --lang es --transformer assets/encoders/multilingual-e5-small-q4 --epochs 1
"""

import json
import shlex
import statistics
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import typer
from common import cpu_kind, machine, machine_line, remarks, versions
from corpora import N_SENTS
from processes import PROJECT_DIR, RESULTS_DIR, WORK_DIR
from spacy.util import load_config
from wasabi import msg

from conll_ner.files import write_atomically
from conll_ner.markdown import replace_between
from conll_ner.runs import LANGUAGES, MULTI, spacy_lang
from conll_ner.training.joint_corpus import describe_copies, language_copies

RESULTS = RESULTS_DIR / "results_recipe_probes.json"
WORK = WORK_DIR / "recipe_probes"

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


def probe_settings(model_dir: Path, project_dir: Optional[Path] = None) -> Dict[str, Any]:
    """What a probe trained with, from its saved config and, where its
    training corpus is found from `project_dir` (the folder its relative
    paths start from), the convert step's statistics of that corpus."""
    config = load_config(model_dir / "config.cfg")
    transformer = config["components"].get("transformer", {}).get("model", {})
    training = config["training"]
    # a schedule's settings, or a constant rate (the CNN's configs)
    rate = training["optimizer"]["learn_rate"]
    schedule = rate if isinstance(rate, dict) else {"initial_rate": rate}
    ner_model = config["components"].get("ner", {}).get("model", {})
    tok2vec = ner_model.get("tok2vec", {})
    return {
        "lang": config["nlp"]["lang"],
        "transformer": transformer.get("name"),
        "epochs": config.get("budget", {}).get("epochs"),
        "freeze_word_embeddings_above": transformer.get("freeze_word_embeddings_above"),
        "peak_learning_rate": schedule.get("initial_rate"),
        "warmup_fraction": schedule.get("warmup_fraction"),
        "optimizer": training["optimizer"]["@optimizers"],
        "layer_decay": training["optimizer"].get("layer_decay"),
        "head_rate_scale": training["optimizer"].get("head_rate_scale"),
        "use_averages": training["optimizer"].get("use_averages"),
        "ner_features": ner_features(tok2vec) if transformer else None,
        "pooling": pooling(tok2vec) if transformer else None,
        "ner_model": {key: ner_model.get(key) for key in NER_MODEL_SETTINGS} if transformer else None,
        "windows": windows(transformer),
        "encoder_config": dict(transformer.get("transformer_config") or {}) if transformer else None,
        "sentences_per_doc": sentences_per_doc(config["paths"]["train"], project_dir) if project_dir else None,
        "max_steps": training["max_steps"],
        "eval_frequency": training["eval_frequency"],
        "dropout": training["dropout"],
        "vocabulary_rows": vocabulary_rows(transformer.get("name"), project_dir),
        "language_copies": language_copies(config),
        "seed": config["system"]["seed"],
    }


def copies_cell(settings: Dict[str, Any]) -> str:
    """A joint run's language weights, for its recipe cell (runs recorded
    before the setting read each language once); nothing for a run of one
    language."""
    if settings["lang"] != spacy_lang(MULTI):
        return ""
    copies = settings.get("language_copies") or {}
    if not copies:
        return "; each language once per epoch"
    return f"; {describe_copies(copies)} per epoch"


def ner_features(tok2vec: Dict[str, Any]) -> List[str]:
    """What the NER model reads: the named parts of a concatenation (the
    transformer and the shape embedding in configs/transformer.cfg), or the
    one layer's name."""
    if tok2vec.get("@layers") == "concatenate.v1":
        return sorted(tok2vec["*"])
    return ["transformer"] if "Transformer" in tok2vec.get("@architectures", "") else [str(tok2vec)]


def pooling(tok2vec: Dict[str, Any]) -> Optional[str]:
    """How the NER model's listener pools a token's pieces (the configs:
    reduce_mean.v1), from the listener alone or inside the concatenation."""
    listener = tok2vec["*"].get("transformer", {}) if tok2vec.get("@layers") == "concatenate.v1" else tok2vec
    return listener.get("pooling", {}).get("@layers")


# The NER model's settings a probe may change (spacy.TransitionBasedParser.v2),
# with configs/transformer.cfg's values; runs recorded before a key have the
# configs' value for it
NER_MODEL_SETTINGS = {"extra_state_tokens": False, "use_upper": False, "hidden_width": 64}


# The transformer pipelines' dropout (training.dropout) in
# configs/transformer.cfg; the CNN's config has its own
TRANSFORMER_DROPOUT = 0.1


# The transformer's windows (spacy-transformers.strided_spans.v1) with
# configs/transformer.cfg's values
WINDOW_SETTINGS = {"window": 128, "stride": 96}


# transformer_config keys that change how the encoder computes, not what it
# learns: eager and SDPA attention are the same function (tests/test_cpu_transformer.py)
COMPUTATION_ONLY = {"attn_implementation"}


def windows(transformer: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The spaCy tokens per window and the stride between windows, where the
    transformer has strided windows."""
    spans = transformer.get("get_spans", {})
    if spans.get("@span_getters") != "spacy-transformers.strided_spans.v1":
        return None
    return {key: spans.get(key) for key in WINDOW_SETTINGS}


def sentences_per_doc(train_path: Optional[str], project_dir: Path) -> Optional[int]:
    """The training Docs' sentences (the convert step's n_sents; 0: whole
    documents), from the statistics it writes beside each .spacy file; None
    where the config names no path or they are not found or differ between
    the corpus's files."""
    if not train_path:
        return None
    path = Path(train_path) if Path(train_path).is_absolute() else project_dir / train_path
    stats = [path.with_suffix(".stats.json")] if path.suffix == ".spacy" else sorted(path.glob("*.stats.json"))
    found = {json.loads(file.read_text(encoding="utf8")).get("n_sents") for file in stats if file.is_file()}
    return found.pop() if len(found) == 1 else None


def recipe(settings: Dict[str, Any]) -> str:
    """The schedule, and what differs from the configs' Adam and features."""
    parts = [f"peak {settings['peak_learning_rate']:g}"]
    if settings.get("warmup_fraction") is not None:
        parts.append(f"warmup {settings['warmup_fraction']:g}")
    if settings.get("layer_decay") not in (None, 1.0):  # 1.0: one rate for the whole encoder
        parts.append(f"layer decay {settings['layer_decay']:g}")
    if head_rate_scale(settings) != 1.0:
        parts.append(f"NER model at {head_rate_scale(settings):g}x the peak rate")
    if use_averages(settings):
        parts.append("parameter averages")
    features = settings.get("ner_features")
    if features is not None and "shape" not in features:
        parts.append("no shape feature")
    if settings.get("pooling") not in (None, "reduce_mean.v1"):  # runs recorded before it: the configs' mean
        parts.append(f"pieces pooled by {settings['pooling']}")
    # runs recorded before the setting: the configs' NER model
    for key, value in (settings.get("ner_model") or {}).items():
        if value != NER_MODEL_SETTINGS[key]:
            parts.append(f"NER {key} {str(value).lower()}")
    if settings["transformer"] and settings.get("dropout") not in (None, TRANSFORMER_DROPOUT):
        parts.append(f"dropout {settings['dropout']:g}")
    spans = settings.get("windows")  # runs recorded before the setting: the configs' windows
    if spans and spans != WINDOW_SETTINGS:
        parts.append(f"windows of {spans['window']} tokens, stride {spans['stride']}")
    # runs recorded before the setting: the configs' empty transformer_config
    for key, value in sorted((settings.get("encoder_config") or {}).items()):
        if key not in COMPUTATION_ONLY:
            parts.append(f"encoder {key} {value:g}" if isinstance(value, float) else f"encoder {key} {value}")
    sentences = settings.get("sentences_per_doc")  # runs recorded before the setting, or not found: project.yml's
    if sentences is not None and sentences != N_SENTS:
        parts.append(f"Docs of {sentences} sentence{'s' * (sentences > 1)}" if sentences else "whole documents as Docs")
    return ", ".join(parts)


def vocabulary_rows(checkpoint: Optional[str], project_dir: Optional[Path] = None) -> Optional[int]:
    """The encoder's vocabulary size, where its checkpoint is at hand: a
    relative folder is looked for in the run's project folder first, where
    the train step read it, so that the record does not depend on the
    folder it is made from."""
    if not checkpoint:
        return None
    from transformers import AutoConfig

    in_project = project_dir / checkpoint if project_dir is not None else None
    try:
        return AutoConfig.from_pretrained(
            str(in_project) if in_project and in_project.is_dir() else checkpoint
        ).vocab_size
    except (OSError, ValueError):
        return None


def encoder_name(settings: Dict[str, Any]) -> str:
    return f"`{Path(settings['transformer']).name}`" if settings["transformer"] else "none (CNN)"


def word_embeddings(settings: Dict[str, Any]) -> str:
    if not settings["transformer"]:
        return "-"
    threshold, rows = settings["freeze_word_embeddings_above"], settings["vocabulary_rows"]
    if threshold is None:
        return "trained (no threshold)"
    if rows is None:
        return f"frozen above {threshold:,} rows"
    return f"{'trained' if embeddings_trained(settings) else 'frozen'} ({rows:,} rows)"


def embeddings_trained(settings: Dict[str, Any]) -> Optional[bool]:
    """Whether a transformer run trained its word embeddings (None: not
    known)."""
    threshold, rows = settings.get("freeze_word_embeddings_above"), settings.get("vocabulary_rows")
    if not settings.get("transformer") or threshold is None or rows is None:
        return None
    return rows <= threshold


def same_recipe(settings: Dict[str, Any], other: Dict[str, Any]) -> bool:
    """Whether two runs share a recipe: the same recipe line, and word
    embeddings trained in both, frozen in both or unknown in both (a copy
    trimmed to the data's pieces trains what the full vocabulary freezes)."""
    trained = [embeddings_trained(s) for s in (settings, other)]
    return recipe(settings) == recipe(other) and trained[0] == trained[1]


def provenance(name: str, command: str, remark: str) -> Dict[str, Any]:
    """What every recorded run carries: its name, command, date, machine,
    versions and remarks."""
    return {
        "name": name,
        "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "remarks": [remark] if remark else [],
    }


def read_probe(
    name: str,
    training_dir: Path,
    command: str,
    remark: str = "",
    evaluations: Optional[Dict[str, Path]] = None,
    unfinished: bool = False,
    project_dir: Optional[Path] = None,
) -> Dict[str, Any]:
    """A probe's entry: its settings, the dev curve of its train log, the
    scores of its evaluations (metrics.json files of scripts/evaluate.py,
    by name: the best model in torch, served in int8, ...), and what was run
    where. An unfinished run (still training, or stopped before its last
    update) is read as far as its last evaluation: spaCy saves model-last
    and model-best at every evaluation. The run's relative corpus paths
    start from `project_dir`, by default the folder above the workflow's
    training/<run>."""
    log = [json.loads(line) for line in (training_dir / "train_log.jsonl").read_text().splitlines() if line]
    if not log:
        raise ValueError(f"{training_dir / 'train_log.jsonl'} has no evaluation")
    curve = [{"step": e["step"], "seconds": e["seconds"], "dev_f1": e["scores"]["ents_f"] / 100} for e in log]
    return {
        **provenance(name, command, remark),
        "settings": probe_settings(training_dir / "model-last", project_dir or training_dir.resolve().parent.parent),
        "curve": curve,
        "best_dev_f1": max(point["dev_f1"] for point in curve),
        "updates": log[-1]["step"],
        "seconds": log[-1]["seconds"],
        "evaluations": {key: read_evaluation(path) for key, path in (evaluations or {}).items()},
        "unfinished": unfinished,
    }


def read_trainer_run(name: str, result_json: Path, lang: str, command: str, remark: str = "") -> Dict[str, Any]:
    """A full-file run of the Trainer recipe: the result file that
    benchmarks/hf_baseline.py writes (with --dev-curve), with the command,
    machine and date."""
    result = json.loads(result_json.read_text(encoding="utf8"))
    if not result.get("curve"):
        raise ValueError(f"{result_json} has no dev curve: run benchmarks/hf_baseline.py with --dev-curve")
    return {
        **provenance(name, command, remark),
        "lang": lang,
        "encoder": result["config"]["model_dir"],
        "epochs": result["config"]["epochs"],
        "seed": result["config"].get("seed", 0),
        "bf16": result["config"]["bf16"],
        "learning_rate": result["config"]["learning_rate"],
        "batch_size": result["config"]["batch_size"],
        "curve": [{"epoch": p["epoch"], "step": p["step"], "dev_f1": p["f1"]} for p in result["curve"]],
        "dev_f1": result["f1"],
        "steps": result["steps"],
        "train_seconds": result["train_seconds"],
        "train_words_per_second": result["train_words_per_second"],
        "torch_threads": result["torch_threads"],
    }


def read_evaluation(metrics_json: Path) -> Dict[str, Any]:
    """Scores and runtime of one metrics.json of scripts/evaluate.py."""
    metrics = json.loads(metrics_json.read_text(encoding="utf8"))
    return {key: metrics[key] for key in ("ents_f", "ents_p", "ents_r", "runtime")} | {"file": str(metrics_json)}


def evaluation_options(values: List[str]) -> Dict[str, Path]:
    """NAME=METRICS.json options, by name."""
    parsed = {}
    for value in values:
        key, sep, path = value.partition("=")
        if not sep or not Path(path).is_file():
            raise typer.BadParameter(f"{value!r}: give NAME=PATH of an existing metrics.json")
        parsed[key] = Path(path)
    return parsed


def store(entry: Dict[str, Any], path: Path = RESULTS) -> None:
    """Add or replace the probe of this name in the results file."""
    store_in("probes", entry, path)


def store_in(key: str, entry: Dict[str, Any], path: Path = RESULTS) -> None:
    """Add or replace the entry of this name under `key` of the results file."""
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.setdefault("probes", {})
    results.setdefault(key, {})[entry["name"]] = entry
    write_atomically(path, (json.dumps(results, indent=2) + "\n").encode("utf8"))


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The probe's name (its folder in benchmarks/work/recipe_probes)"),
    lang: str = typer.Option("es", "--lang"),
    transformer: str = typer.Option(..., "--transformer", help="Hugging Face name or local directory"),
    epochs: float = typer.Option(1.0, "--epochs", help="The budget of every probe to compare, in epochs"),
    config: Path = typer.Option(PROJECT_DIR / "configs" / "transformer.cfg", "--config"),
    remark: str = typer.Option("", "--remark", help="What the figures do not show (a shared machine, say)"),
) -> None:
    """Train a probe with the train step (further --section.key value
    arguments override the config) and record it."""
    output = WORK / name
    args = [sys.executable, "scripts/train.py", str(config), str(output), "--lang", lang]
    args += ["--transformer", transformer, "--gpu-id", "-1", "--epochs", str(epochs), *ctx.args]
    subprocess.run(args, cwd=PROJECT_DIR, check=True)
    store(read_probe(name, output, shlex.join(["python", *args[1:]]), remark, project_dir=PROJECT_DIR))
    msg.good(f"Probe {name} recorded in {RESULTS}")


@app.command("record")
def record_command(
    name: str = typer.Argument(..., help="The probe's name"),
    training_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="The run's training folder"),
    command: str = typer.Option(..., "--command", help="The command that trained it, as run"),
    remark: str = typer.Option("", "--remark", help="What the figures do not show (a shared machine, say)"),
    evaluation: List[str] = typer.Option(
        [], "--evaluation", help="NAME=PATH of a metrics.json of scripts/evaluate.py on the run (repeatable)"
    ),
    unfinished: bool = typer.Option(
        False, "--unfinished", help="The run is still training or was stopped before its last update"
    ),
    project_dir: Optional[Path] = typer.Option(
        None, "--project-dir", help="Where the run's relative corpus paths start; default: the folder above training/"
    ),
) -> None:
    """Record a run of the train step as a probe: a finished one, or with
    --unfinished one as far as its last evaluation."""
    store(read_probe(name, training_dir, command, remark, evaluation_options(evaluation), unfinished, project_dir))
    msg.good(f"Probe {name} recorded in {RESULTS}")


@app.command("record-trainer")
def record_trainer_command(
    name: str = typer.Argument(..., help="The run's name"),
    result_json: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="benchmarks/hf_baseline.py's --output-json"
    ),
    lang: str = typer.Option(..., "--lang", help="The language of its files: es, nl or en"),
    command: str = typer.Option(..., "--command", help="The command that trained it, as run"),
    remark: str = typer.Option("", "--remark", help="What the figures do not show (a shared machine, say)"),
) -> None:
    """Record a full-file run of the Trainer recipe, for the comparison with
    the documented command's runs."""
    store_in("trainer_runs", read_trainer_run(name, result_json, lang, command, remark))
    msg.good(f"Trainer run {name} recorded in {RESULTS}")


def percent(value: float) -> str:
    return f"{100 * value:.2f}"


def evaluated(probe: Dict[str, Any]) -> str:
    """The recorded evaluations of a probe: name, F1 and the runtime that
    computed it."""
    found = probe.get("evaluations", {})
    return "; ".join(f"{key} {percent(e['ents_f'])} ({e['runtime']['precision']})" for key, e in found.items()) or "-"


def what_ran_where(probe: Dict[str, Any]) -> List[str]:
    """A probe's command, date, machine and remarks, below a table of probes."""
    lines = [
        f"`{probe['name']}`: `{probe['command']}`  ",
        f"Date: {probe['date']}  ",
        machine_line(probe["machine"]),
        "",
    ]
    return lines + remarks(probe)[1:] + ([""] if probe.get("remarks") else [])


def with_what_ran_where(table: List[str], entries: List[Dict[str, Any]]) -> List[str]:
    """A table's lines, then each of its entries' command, date, machine and remarks."""
    return table + [""] + [line for entry in entries for line in what_ran_where(entry)]


def report_markdown(results: Dict[str, Any]) -> str:
    """The probes side by side: settings, the dev curve and the best dev F1,
    then each probe's command, machine and date."""
    probes = list(results["probes"].values())
    lines = [
        "## Recipe probes on full training files (`benchmarks/recipe_probes.py`)",
        "",
        "Each probe is the train step (`scripts/train.py`) with the same budget and the overrides named; dev F1 "
        "on the whole dev file at each evaluation (the first is spaCy's evaluation after one update).",
        "",
        "| Probe | Lang | Encoder | Word embeddings | Recipe | Updates | Dev F1 by evaluation | Best | Seconds "
        "| Evaluated (F1) |",
        "|---|---|---|---|---|---:|---|---:|---:|---|",
    ]
    for probe in probes:
        settings = probe["settings"]
        curve = ", ".join(f"{percent(p['dev_f1'])} ({p['step']})" for p in probe["curve"])
        lines.append(
            f"| {probe['name']} | {lang_cell(probe)} | {encoder_name(settings)} | "
            f"{word_embeddings(settings)} | {recipe(settings)} | {probe['updates']:,} | "
            f"{curve} | {percent(probe['best_dev_f1'])} | {probe['seconds']:,} | {evaluated(probe)} |"
        )
    lines = with_what_ran_where(lines, probes)
    if results.get("trainer_runs"):
        lines += ["### The Trainer recipe on the same files", "", trainer_comparison_markdown(results)]
    if joint_runs(results):
        lines += ["### One pipeline for en+es+nl against one per language", "", joint_comparison_markdown(results)]
    for compared in COMPARED_SETTINGS:
        if compared_groups(results, compared):
            lines += [f"### {compared.section}", "", compared_markdown(results, compared)]
    return "\n".join(lines).rstrip("\n") + "\n"


def final_dev_f1(probe: Dict[str, Any]) -> float:
    """A run's dev F1 at its last evaluation: after its last epoch, as the
    Trainer's is."""
    return probe["curve"][-1]["dev_f1"]


# #33's targets on the full dev files, in points: ours >= Trainer + 1, ours >= CNN + 5, the joint
# pipeline at most 1 below each per-language pipeline
TRAINER_MARGIN = 1.0
CNN_MARGIN = 5.0
JOINT_MARGIN = -1.0


def target_cell(margin: float, target: float) -> str:
    """A margin in points and whether it meets its target."""
    return f"{margin:+.2f} ({'met' if margin >= target else 'missed'}: target {target:+g})"


def runs_like_trainer_run(results: Dict[str, Any], trainer: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Our finished transformer runs (documented command and probes) of a
    Trainer run's language and epochs, in the order they were recorded."""
    return [
        run
        for run in results["probes"].values()
        if run["settings"]["transformer"]
        and not run.get("unfinished")
        and run["settings"]["lang"] == trainer["lang"]
        and run["settings"].get("epochs") == trainer["epochs"]
    ]


def cnn_default_run(results: Dict[str, Any], lang: str) -> Optional[Dict[str, Any]]:
    """The last recorded run of the documented CNN command for a language."""
    cnns = [
        run for run in workflow_runs(results) if not run["settings"]["transformer"] and run["settings"]["lang"] == lang
    ]
    return cnns[-1] if cnns else None


def epochs_done(run: Dict[str, Any]) -> Optional[float]:
    """The epochs a run trained: its budget's, or for an unfinished run the
    share of them its updates so far make."""
    epochs = run["settings"].get("epochs")
    if epochs and run.get("unfinished"):
        return round(epochs * run["updates"] / run["settings"]["max_steps"], 1)
    return epochs


def epochs_cell(run: Dict[str, Any]) -> str:
    """A run's epochs as its config's budget says (whole ones as "6"), and
    how far an unfinished run got."""
    epochs = run["settings"].get("epochs")
    if not epochs:
        return "not recorded"
    return f"{epochs_done(run):g} of {epochs:g}, unfinished" if run.get("unfinished") else f"{epochs:g}"


def lang_cell(run: Dict[str, Any]) -> str:
    """A run's language as the workflow names it: `multi` for the joint
    pipeline (spaCy's `xx` class)."""
    lang = run["settings"]["lang"]
    return MULTI if lang == spacy_lang(MULTI) else lang


def joint_runs(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Our runs of one pipeline for en+es+nl (`--vars.lang multi`: spaCy's
    multi-language class)."""
    return [run for run in results["probes"].values() if run["settings"]["lang"] == spacy_lang(MULTI)]


def per_language_run(results: Dict[str, Any], joint: Dict[str, Any], lang: str) -> Optional[Dict[str, Any]]:
    """Our latest recorded finished run of one language with the joint run's
    encoder, epochs and recipe."""
    runs = [
        run
        for run in results["probes"].values()
        if run["settings"]["lang"] == lang
        and not run.get("unfinished")
        and run["settings"]["transformer"] == joint["settings"]["transformer"]
        and run["settings"].get("epochs") == joint["settings"].get("epochs")
        and same_recipe(run["settings"], joint["settings"])
    ]
    return latest(runs)


def latest(runs: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The most recently recorded of some runs."""
    return max(runs, key=lambda run: run["date"]) if runs else None


def joint_comparison_markdown(results: Dict[str, Any], joints: Optional[List[Dict[str, Any]]] = None) -> str:
    """Each joint run's (all of them unless `joints` are given) best model on
    each language's dev file (its `dev-<lang>` evaluations) beside the best
    model of our run of that language alone with the same encoder, epochs
    and recipe (its `torch` evaluation): both scored by scripts/evaluate.py,
    as each would ship; differences in points. The target is #33's for the
    documented command: a probe's difference gets no verdict."""
    lines = [
        "| Lang | Epochs | Recipe | Joint en+es+nl (run): dev F1 | Per-language (run): dev F1 | Joint - per-language |",
        "|---|---:|---|---|---|---:|",
    ]
    for joint in joint_runs(results) if joints is None else joints:
        for lang in LANGUAGES:
            joint_score = joint.get("evaluations", {}).get(f"dev-{lang}")
            alone = per_language_run(results, joint, lang)
            alone_score = alone.get("evaluations", {}).get("torch") if alone else None
            joint_cell = f"{percent(joint_score['ents_f'])} ({joint['name']})" if joint_score else "not evaluated"
            if alone is None:
                alone_cell = "not run"
            else:
                alone_cell = f"{percent(alone_score['ents_f'])} ({alone['name']})" if alone_score else "not evaluated"
            margin = "-"
            if joint_score and alone_score:
                difference = 100 * (joint_score["ents_f"] - alone_score["ents_f"])
                # an unfinished joint run has fewer epochs than the run it is set beside: no verdict yet
                if joint.get("unfinished"):
                    margin = f"{difference:+.2f} (joint unfinished)"
                elif is_workflow_run(joint):
                    margin = target_cell(difference, JOINT_MARGIN)
                else:
                    margin = f"{difference:+.2f} (probe)"
            lines.append(
                f"| {lang} | {epochs_cell(joint)} | {recipe(joint['settings'])}{copies_cell(joint['settings'])} | "
                f"{joint_cell} | {alone_cell} | {margin} |"
            )
    return "\n".join(lines) + "\n"


def seed_runs_cell(runs: List[Tuple[str, float, int]]) -> str:
    """Runs given as (name, dev F1 after the last epoch, seed)."""
    return ", ".join(f"{percent(f1)} ({name}, seed {run_seed})" for name, f1, run_seed in runs)


def trainer_groups(results: Dict[str, Any]) -> Dict[Tuple[Any, ...], List[Dict[str, Any]]]:
    """The Trainer runs by language, epochs and recipe: runs that differ in
    their seed alone (and the trimmed copy of the encoder, whose outputs on
    the files are the full encoder's) share a group."""
    groups: Dict[Tuple[Any, ...], List[Dict[str, Any]]] = {}
    for trainer in results.get("trainer_runs", {}).values():
        key = (trainer["lang"], trainer["epochs"], trainer["learning_rate"], trainer["batch_size"], trainer["bf16"])
        groups.setdefault(key, []).append(trainer)
    return groups


def recipe_key(settings: Dict[str, Any]) -> Tuple[str, str, str, str]:
    """What runs of one language and epochs share where they differ in their
    seed alone (or the CPU they ran on): the encoder, the recipe, the word
    embeddings' freezing threshold (with the encoder, it decides whether they
    train) and, for a joint run, how often it reads each language."""
    return (
        encoder_name(settings),
        recipe(settings),
        str(settings["freeze_word_embeddings_above"]),
        copies_cell(settings),
    )


def seed_groups(runs: List[Dict[str, Any]]) -> Dict[Tuple[str, str, str, str], List[Dict[str, Any]]]:
    """Runs of one language and epochs by `recipe_key`."""
    groups: Dict[Tuple[str, str, str, str], List[Dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(recipe_key(run["settings"]), []).append(run)
    return groups


def trainer_comparison_markdown(results: Dict[str, Any]) -> str:
    """The Trainer recipe's runs of a language and epochs beside each recipe
    of ours run at the same language and epochs (the documented command's
    and the probes' at full length) and the CNN default's run of that
    language: dev F1 after the last epoch of every run, with its seed, and
    the mean over each recipe's runs, which the differences (in points)
    compare, since one run of either side moves by about a point with its
    seed. Then the Trainer runs' curves and each one's command, machine and
    date."""
    trainer_runs = list(results.get("trainer_runs", {}).values())
    lines = [
        "| Lang | Epochs | Our encoder; recipe | Ours: dev F1 (run, seed) | Ours: mean | Trainer recipe: dev F1 "
        "(run, seed) | Trainer: mean | Ours - Trainer | CNN default (run): dev F1 | Ours - CNN |",
        "|---|---:|---|---|---:|---|---:|---:|---|---:|",
    ]
    for trainers in trainer_groups(results).values():
        lang, epochs = trainers[0]["lang"], trainers[0]["epochs"]
        trainer_mean = statistics.mean([trainer["dev_f1"] for trainer in trainers])
        trainer_cells = seed_runs_cell([(t["name"], t["dev_f1"], seed(t)) for t in trainers])
        trainer_cells += f" | {percent(trainer_mean)}"
        cnn = cnn_default_run(results, lang)
        cnn_cell = f"{percent(final_dev_f1(cnn))} ({cnn['name']})" if cnn else "not run"
        ours = seed_groups(runs_like_trainer_run(results, trainers[0]))
        if not ours:
            lines.append(f"| {lang} | {epochs:g} | - | not run | - | {trainer_cells} | - | {cnn_cell} | - |")
        for (encoder, our_recipe, *_), runs in ours.items():
            named_runs = [(run["name"], final_dev_f1(run), seed(run["settings"])) for run in runs]
            ours_mean = statistics.mean([f1 for _, f1, _ in named_runs])
            margin = target_cell(100 * (ours_mean - trainer_mean), TRAINER_MARGIN)
            cnn_margin = target_cell(100 * (ours_mean - final_dev_f1(cnn)), CNN_MARGIN) if cnn else "-"
            lines.append(
                f"| {lang} | {epochs:g} | {encoder}; {our_recipe} | {seed_runs_cell(named_runs)} "
                f"| {percent(ours_mean)} | {trainer_cells} | {margin} | {cnn_cell} | {cnn_margin} |"
            )
    lines += [
        "",
        "| Trainer run | Lang | Encoder | Recipe | Seed | Steps | Dev F1 by epoch | Minutes per epoch "
        "| Training words/s |",
        "|---|---|---|---|---:|---:|---|---:|---:|",
    ]
    for trainer in trainer_runs:
        curve = ", ".join(f"{percent(point['dev_f1'])} ({point['epoch']:g})" for point in trainer["curve"])
        precision = "bf16 autocast" if trainer["bf16"] else "fp32"
        recipe_cell = f"{trainer['learning_rate']:g}, batch {trainer['batch_size']}, {precision}"
        lines.append(
            f"| {trainer['name']} | {trainer['lang']} | `{Path(trainer['encoder']).name}` | {recipe_cell} | "
            f"{seed(trainer)} | {trainer['steps']:,} | {curve} | "
            f"{trainer['train_seconds'] / trainer['epochs'] / 60:.0f} | {trainer['train_words_per_second']:,.0f} |"
        )
    lines = with_what_ran_where(lines, trainer_runs)
    return "\n".join(lines).rstrip("\n") + "\n"


def seed(recorded: Dict[str, Any]) -> int:
    """A run's random seed, from a probe's settings ([system] seed) or a
    Trainer run's record (--seed). Runs recorded before their seed was ran
    with seed 0 (the configs' and benchmarks/hf_baseline.py's default)."""
    return recorded.get("seed", 0)


def head_rate_scale(settings: Dict[str, Any]) -> float:
    """The NER model's rate as a multiple of the peak rate (runs recorded
    before the setting: 1)."""
    return settings.get("head_rate_scale") or 1.0


def use_averages(settings: Dict[str, Any]) -> bool:
    """Whether a run evaluated and saved the optimizer's parameter averages
    (runs recorded before the setting: the configs' false)."""
    return bool(settings.get("use_averages"))


def docs_markers(name: str) -> Tuple[str, str]:
    """The markers a docs page's table rendered from the probes' results goes between."""
    return (
        f"<!-- {name}:start (rendered from benchmarks/results/results_recipe_probes.json by "
        "`spacy project run render benchmarks`) -->",
        f"<!-- {name}:end -->",
    )


@dataclass(frozen=True)
class ComparedSetting:
    """A recipe setting whose runs are set side by side, those that differ in
    it alone: its key in a probe's settings, the table's column title, the
    setting's name in the recipe column's title, the section title, how a
    run's value is read (older records lack some settings) and written in a
    cell, and the name of the docs/recipes.md markers its table goes
    between."""

    key: str
    column: str
    besides: str
    section: str
    value: Callable[[Dict[str, Any]], Any]
    cell: Callable[[Any], str]
    marker: str

    @property
    def docs_start(self) -> str:
        return docs_markers(self.marker)[0]

    @property
    def docs_end(self) -> str:
        return docs_markers(self.marker)[1]


HEAD_RATE = ComparedSetting(
    key="head_rate_scale",
    column="NER model's rate",
    besides="the NER model's rate",
    section="The NER model's rate, by CPU",
    value=head_rate_scale,
    cell="{:g}x".format,
    marker="head-rate-runs",
)
AVERAGES = ComparedSetting(
    key="use_averages",
    column="Parameter averages",
    besides="parameter averages",
    section="Parameter averages, by CPU",
    value=use_averages,
    cell=lambda on: "on" if on else "off",
    marker="averages-runs",
)
COMPARED_SETTINGS = (HEAD_RATE, AVERAGES)


def compared_groups(results: Dict[str, Any], compared: ComparedSetting) -> Dict[Tuple[str, ...], List[Dict[str, Any]]]:
    """Our finished transformer runs that differ in the `compared` setting
    alone: grouped by language, epochs and the `recipe_key` of the rest,
    each group with runs at two values or more."""
    groups: Dict[Tuple[str, ...], List[Dict[str, Any]]] = {}
    for run in results["probes"].values():
        settings = run["settings"]
        if not settings["transformer"] or run.get("unfinished"):
            continue
        key = (lang_cell(run), epochs_cell(run), *recipe_key({**settings, compared.key: None}))
        groups.setdefault(key, []).append(run)
    return {key: runs for key, runs in groups.items() if len({compared.value(run["settings"]) for run in runs}) > 1}


def compared_markdown(results: Dict[str, Any], compared: ComparedSetting) -> str:
    """Runs that differ in the `compared` setting alone, by CPU kind and
    value: each run's dev F1 after its last epoch, with its seed, and their
    mean. Runs on two CPU kinds compute differently, so a setting's effect is
    read within one kind's rows."""
    lines = [
        f"| Lang | Encoder | Epochs | Recipe besides {compared.besides} | CPU "
        f"| {compared.column} | Runs: dev F1 at the end | Mean |",
        "|---|---|---:|---|---|---:|---|---:|",
    ]
    for (lang, epochs, encoder, rest, _, copies), runs in compared_groups(results, compared).items():
        rest += copies
        cells: Dict[Tuple[str, Any], List[Dict[str, Any]]] = {}
        for run in runs:
            cells.setdefault((cpu_kind(run["machine"]), compared.value(run["settings"])), []).append(run)
        for (cpu, value), cell in sorted(cells.items()):
            f1s = [final_dev_f1(run) for run in cell]
            named = ", ".join(
                f"{percent(final_dev_f1(run))} (`{run['name']}`, seed {seed(run['settings'])})" for run in cell
            )
            lines.append(
                f"| {lang} | {encoder} | {epochs} | {rest} | {cpu} | {compared.cell(value)} | {named} | "
                f"{percent(statistics.mean(f1s))} |"
            )
    return "\n".join(lines) + "\n"


DOCS_START, DOCS_END = docs_markers("workflow-runs")


def is_workflow_run(probe: Dict[str, Any]) -> bool:
    """A run of the documented workflow (its train step, `spacy project run
    ...`), not of a variant."""
    return probe["command"].startswith("spacy project run")


def workflow_runs(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The probes that are runs of the documented workflow."""
    return [probe for probe in results["probes"].values() if is_workflow_run(probe)]


def joint_workflow_runs(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [run for run in joint_runs(results) if is_workflow_run(run)]


def workflow_runs_markdown(results: Dict[str, Any]) -> str:
    """The documented command's full-file runs for docs/multilingual.md: dev
    F1 at each evaluation (update), the evaluations of the best model,
    minutes per epoch on the run's machine (training and its dev
    evaluations), then each run's command, machine, date and remarks."""
    runs = workflow_runs(results)
    lines = [
        "| Run | Lang | Epochs | Updates | Dev F1 by evaluation | Best model, evaluated (F1) | Minutes per epoch |",
        "|---|---|---:|---:|---|---|---:|",
    ]
    for probe in runs:
        epochs = epochs_done(probe)
        curve = ", ".join(f"{percent(point['dev_f1'])} ({point['step']:,})" for point in probe["curve"][1:])
        minutes = f"{probe['seconds'] / epochs / 60:.0f}" if epochs else "not recorded"
        lines.append(
            f"| {probe['name']} | {lang_cell(probe)} | {epochs_cell(probe)} | "
            f"{probe['updates']:,} | "
            f"{curve} | {evaluated(probe)} | {minutes} |"
        )
    lines = with_what_ran_where(lines, runs)
    if results.get("trainer_runs"):
        lines += [
            "Against the Hugging Face Trainer recipe of the model cards (benchmarks/hf_baseline.py) with the same "
            "encoder, files and epochs, and the CNN default: each run's dev F1 after its last epoch, and the mean "
            "of each recipe's runs (of several seeds, where they were run), which the differences compare:",
            "",
            trainer_comparison_markdown(results),
        ]
    if joint_workflow_runs(results):
        lines += [
            "The joint pipeline (`--vars.lang multi`) on each language's dev file against our run of that language "
            "alone with the same encoder, epochs and recipe: each one's best model scored by scripts/evaluate.py "
            "(target: the joint at most 1 point below):",
            "",
            joint_comparison_markdown(results, joint_workflow_runs(results)),
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_docs(docs: Path, results: Dict[str, Any]) -> None:
    """Put the workflow runs between the markers of docs/multilingual.md and
    the runs by each compared setting between theirs in docs/recipes.md
    (nothing happens where a page is missing)."""
    pages = [("multilingual.md", DOCS_START, DOCS_END, workflow_runs_markdown(results))]
    pages += [
        ("recipes.md", compared.docs_start, compared.docs_end, compared_markdown(results, compared))
        for compared in COMPARED_SETTINGS
    ]
    for page, start, end, markdown in pages:
        path = docs / page
        if path.is_file():
            text = replace_between(path.read_text(encoding="utf8"), start, end, markdown)
            write_atomically(path, text.encode("utf8"))


if __name__ == "__main__":
    app()

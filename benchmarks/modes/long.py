"""The `long` mode: the transformer recipes for their full number of epochs,
one after the other: spaCy's default, the Trainer's as published and, with
the mode's `hf_bf16`, the Trainer's in spaCy's CPU precision; their dev F1
by epoch as a plot."""

from pathlib import Path
from typing import Any, Dict

import hf_baseline
from common import (
    cpu_runtime_note,
    dev_scores,
    mode_header,
    prepare_corpus,
    ratio,
    ratios_and_targets,
    remarks,
    score_cells,
    train_spacy,
)
from wasabi import msg

from conll_ner.pipeline.cpu_features import cpu_computes_bfloat16

RESULTS_FILE = "results_long.json"
RESULTS_KEY = None


def curve_name(mode: str) -> str:
    """The PNG of the dev F1 curves (one for every long mode: only `long` keeps it)."""
    return "learning_curves.png"


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


def report_markdown(results: Dict[str, Any], curve_png: str) -> str:
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


def run(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
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

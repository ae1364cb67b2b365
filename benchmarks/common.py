"""What every mode shares: the machine and versions a results file records,
training a pipeline with the project's train script, dev scores, and the
blocks every report renders the same way (the mode's header, remarks,
ratios and targets)."""

import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import spacy
from corpora import first_sentences, write_docbin
from processes import run_checked
from spacy.util import load_config

from conll_ner.evaluation.metrics import evaluate_docbin
from conll_ner.pipeline.cpu_features import cpu_computes_bfloat16, cpu_computes_int8, kernel_caps


def remarks(results: Dict[str, Any]) -> List[str]:
    """What was seen during a run that its figures do not show, recorded in
    its results file under `remarks` (by whoever ran it: the harness cannot
    know that the machine was shared, say)."""
    return (
        ["", "Remarks on this run:", ""] + [f"- {remark}" for remark in results.get("remarks", [])]
        if results.get("remarks")
        else []
    )


# what the CPU computes natively: training and inference speeds depend on it
# as much as on the number of cores
CPU_FEATURES = (("native_bfloat16", "native bfloat16"), ("int8_dot_products", "int8 dot products (VNNI or AMX)"))


# the x86 instruction sets behind them, as /proc/cpuinfo names them
X86_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def cpu_features(machine: Dict[str, Any]) -> str:
    """The CPU's features, as far as the run recorded them (older runs
    recorded bfloat16 only, later ones no instruction sets)."""
    named = [f"{name}: {'yes' if machine[key] else 'no'}" for key, name in CPU_FEATURES if key in machine]
    if "x86_flags" in machine:
        named.append(f"x86 flags: {' '.join(machine['x86_flags']) or 'none of ' + ' '.join(X86_FLAGS)}")
    if machine.get("kernel_caps"):
        named.append(f"kernels capped: {caps_text(machine)}")
    return ", ".join(named)


def caps_text(machine: Dict[str, Any]) -> str:
    return " ".join(f"{name}={value}" for name, value in machine["kernel_caps"].items())


def cpu_kind(machine: Dict[str, Any]) -> str:
    """A run's CPU by what decides its training arithmetic: bfloat16 matrix
    products in AMX, in AVX512-BF16, or none (fp32 on AVX2). Runs of one kind
    compute alike; runs of two kinds are not compared as if they did."""
    flags = set(machine.get("x86_flags", []))
    if "amx_tile" in flags:
        units = "AMX"
    elif "avx512_bf16" in flags:
        units = "AVX512-BF16, no AMX"
    elif "x86_flags" in machine:
        units = "AVX2 only" if "avx2" in flags else "no AVX2"
    else:
        units = "instruction sets not recorded"
    if machine.get("kernel_caps"):  # computes as the caps say, not as the CPU could
        units += f"; kernels capped: {caps_text(machine)}"
    return f"{machine['cpu']} ({units})"


def x86_flags() -> List[str]:
    """Which of X86_FLAGS /proc/cpuinfo lists (none where it is absent)."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = (
        next(
            (line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines() if line.startswith("flags")),
            [],
        )
        if cpuinfo.exists()
        else []
    )
    return [flag for flag in X86_FLAGS if flag in flags]


def avx2_only(machine: Dict[str, Any]) -> bool:
    """A run's CPU has neither int8 dot products (VNNI, AMX) nor native
    bfloat16: the kernels of an AVX2-only CPU, whose speeds are never set in
    one ratio with a newer CPU's. A run under kernel caps keeps its CPU's int8
    dot products (ONNX Runtime cannot be capped), so it is not one; runs
    recorded before the machine record named int8 dot products count as
    newer CPUs."""
    return not machine.get("int8_dot_products", True) and not machine.get("native_bfloat16", True)


def cpu_kind_title(machine: Dict[str, Any]) -> str:
    """What a section title adds for a run on an AVX2-only CPU, whose figures
    sit beside the newer kind's."""
    return ", AVX2-only CPU" if avx2_only(machine) else ""


def machine_line(machine: Dict[str, Any]) -> str:
    """A report's Machine line."""
    features = cpu_features(machine)
    return f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['platform']}" + (
        f", {features}  " if features else "  "
    )


def machine() -> Dict[str, Any]:
    caps = kernel_caps()
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "native_bfloat16": cpu_computes_bfloat16(),
        "int8_dot_products": cpu_computes_int8(),
        "x86_flags": x86_flags(),
        **({"kernel_caps": caps} if caps else {}),
    }


def versions() -> Dict[str, str]:
    found = {}
    for name in ("spacy", "spacy-transformers", "transformers", "torch", "datasets", "seqeval", "accelerate"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


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


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def score_cells(dev: Dict[str, float]) -> str:
    """Dev precision, recall and F1 as percentages, three table cells."""
    return f"{dev['precision'] * 100:.2f} | {dev['recall'] * 100:.2f} | {dev['f1'] * 100:.2f}"


# Code that measured figures depend on and that has been replaced since:
# (the commit that replaced it, its date, what it replaced). A section whose
# run is older says so, with the commit it was measured on (its results'
# `commit`), until the mode is rerun.
SUPERSEDED = (
    (
        "23500ac",
        "2026-11-26T23:47:14+00:00",
        "the transformer's CPU runtime was then the CPU callbacks `conll_ner.transformer_on_cpu.v1` and "
        "`conll_ner.bfloat16_transformer_on_cpu.v1`, which now change nothing; `conll_ner.TransformerModel.v1` "
        "replaced them",
    ),
)


def superseded_note(results: Dict[str, Any]) -> List[str]:
    """The mark of a run measured with code that no longer exists (none for a newer run)."""
    replaced = [(commit, what) for commit, date, what in SUPERSEDED if results["date"] < date]
    if not replaced:
        return []
    measured = results.get("commit") or "unknown"
    reasons = "; ".join(f"{what} (commit {commit})" for commit, what in replaced)
    return [
        f"**Measured on commit {measured[:7]}, with code that no longer exists**: {reasons}. "
        "Rerun the mode to measure the code as it is.",
        "",
    ]


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
        *superseded_note(results),
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


def read_json(path: Path) -> Optional[Dict[str, Any]]:
    return json.loads(path.read_text()) if path.is_file() else None


def script_provenance() -> Dict[str, Any]:
    """What a standalone measuring script records with its figures: the
    command as run, the date, the machine and the versions."""
    return {
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
    }

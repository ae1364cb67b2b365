"""What the int8 encoder's 7-bit weights cost: a trained pipeline's dev F1
in fp32 (torch) and through per-row int8 graphs whose weights use
[-64, 64] (the default, which cannot saturate on AVX2 CPUs) and the full
[-127, 127], on this machine's CPU. Run on a CPU with VNNI or AMX, where
the full range does not saturate, it measures the remedy's price in
accuracy; the speed is the same (the same kernels, the same int8 bytes).

With --emulate-cpu it also scores both graphs on the other kind of CPU:
scripts/evaluate.py under QEMU's user-mode emulation of a CPU model
(`qemu-x86_64 -cpu EPYC-Rome`: AVX2 without AVX512 or VNNI), where ONNX
Runtime picks that CPU's kernels, the u8 x s8 products summed in
saturating 16-bit lanes included. That gives the accuracy of an AVX2 CPU
without one (its speed means nothing: emulation is 100-200x slower, hence
--dev-docs), and the dev sentences whose entities differ between the two
kinds. The figures go to --output-json
(benchmarks/results/int8_weight_range_*.json), from which BENCHMARKS.md
renders them."""

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import spacy
import typer
from common import machine_line, remarks, script_provenance
from processes import run_checked
from spacy.tokens import DocBin

from conll_ner.evaluation.metrics import evaluate_docbin, predictions_conll
from conll_ner.files import write_json
from conll_ner.packaging.int8 import export_int8_graph, export_settings
from conll_ner.pipeline.library_internals import torch_model
from conll_ner.pipeline.prediction_runtime import prediction_runtime, transformer_shims

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])
WEIGHT_LEVELS = (64, 127)
FP32 = {"components.transformer.model.cpu_int8": False, "components.transformer.model.cpu_bfloat16": False}


def int8_variant(level: int) -> str:
    """The name a weight range's figures have in the results."""
    return f"int8, weights in [-{level}, {level}]"


# what a process under emulation reports of the CPU it sees (torch's and the
# pipeline's own checks read CPUID, which QEMU answers for the emulated model)
CPU_SEEN = (
    "import json, torch; from conll_ner.pipeline.cpu_features import cpu_computes_bfloat16, int8_dot_products; "
    "print(json.dumps({'torch_cpu_capability': torch.backends.cpu.get_cpu_capability(), "
    "'native_bfloat16': cpu_computes_bfloat16(), 'int8_dot_products': int8_dot_products()}))"
)


def scored(nlp: spacy.Language, dev: Path, predictions: Optional[Path] = None) -> Dict[str, Any]:
    """Dev scores; with `predictions`, the predicted entities go there as
    scripts/evaluate.py writes them (predictions.conll)."""
    started = time.perf_counter()
    metrics, examples = evaluate_docbin(nlp, dev)
    if predictions is not None:
        predictions.write_text(predictions_conll(examples), encoding="utf8")
    return {
        "f1": metrics["ents_f"],
        "precision": metrics["ents_p"],
        "recall": metrics["ents_r"],
        "sentences": metrics["n_sents"],
        "seconds": time.perf_counter() - started,
        "runtime": prediction_runtime(nlp),
    }


def first_docs(dev: Path, n_docs: int, output: Path) -> Path:
    """The first `n_docs` Docs of a DocBin (all for 0), as a DocBin."""
    docs = list(DocBin().from_disk(dev).get_docs(spacy.blank("xx").vocab))
    DocBin(docs=docs[:n_docs] if n_docs else docs).to_disk(output)
    return output


def predicted_sentences(predictions: Path) -> List[List[str]]:
    """The predicted tags of each sentence of a predictions.conll."""
    blocks = predictions.read_text(encoding="utf8").strip("\n").split("\n\n")
    return [[line.rsplit(" ", 1)[-1] for line in block.splitlines()] for block in blocks]


def qemu_command(cpu_model: str) -> List[str]:
    """The prefix that runs this Python under QEMU's emulation of `cpu_model`."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        raise typer.BadParameter("needs qemu-x86_64 (Debian's package qemu-user)", param_hint="--emulate-cpu")
    return [qemu, "-cpu", cpu_model, os.path.realpath(sys.executable)]


def emulated(cpu_model: str, pipelines: Dict[str, Path], dev: Path, work: Path) -> Dict[str, Any]:
    """Each int8 pipeline scored by scripts/evaluate.py under emulation of
    `cpu_model`, with what that process saw of its CPU."""
    prefix = qemu_command(cpu_model)
    seen = subprocess.run([*prefix, "-c", CPU_SEEN], capture_output=True, text=True, check=True)
    version = subprocess.run([prefix[0], "--version"], capture_output=True, text=True, check=True)
    results: Dict[str, Any] = {}
    for name, pipeline in pipelines.items():
        output = work / f"emulated-{pipeline.name}"
        seconds = run_checked([*prefix, "scripts/evaluate.py", str(pipeline), str(dev), "--output", str(output)])
        metrics = json.loads((output / "metrics.json").read_text())
        results[name] = {
            "f1": metrics["ents_f"],
            "precision": metrics["ents_p"],
            "recall": metrics["ents_r"],
            "seconds": seconds,
            "runtime": metrics["runtime"],
            "predictions": output / "predictions.conll",
        }
        typer.echo(f"{name}, emulated {cpu_model}: F1 {metrics['ents_f']:.4f}")
    return {
        "cpu_model": cpu_model,
        "qemu": version.stdout.splitlines()[0],
        "cpu_seen": json.loads(seen.stdout.strip().splitlines()[-1]),
        "results": results,
    }


@app.command()
def main(
    pipeline: Path = typer.Argument(..., exists=True, file_okay=False, help="A trained transformer pipeline"),
    dev: Path = typer.Argument(..., exists=True, dir_okay=False, help="Its dev DocBin, e.g. corpus/dev/en.spacy"),
    output_json: Path = typer.Option(..., "--output-json"),
    emulate_cpu: Optional[str] = typer.Option(
        None, "--emulate-cpu", help="Also score the int8 graphs under qemu-x86_64 -cpu MODEL (EPYC-Rome: AVX2 only)"
    ),
    dev_docs: int = typer.Option(0, "--dev-docs", help="Score on the first N Docs of DEV only (0: all)"),
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dev = first_docs(dev, dev_docs, work / "dev.spacy")
        results: Dict[str, Any] = {"fp32": scored(spacy.load(pipeline, config=FP32), dev)}
        typer.echo(f"fp32: F1 {results['fp32']['f1']:.4f}")
        int8_pipelines: Dict[str, Path] = {}
        predictions: Dict[str, Path] = {}
        for level in WEIGHT_LEVELS:
            nlp = spacy.load(pipeline)
            (shim,) = transformer_shims(nlp)
            graph = work / "int8.onnx"
            export_int8_graph(copy.deepcopy(torch_model(shim)), graph, weight_level=level)
            shim.set_int8_graph(graph.read_bytes(), export_settings())
            name = int8_variant(level)
            int8_pipelines[name] = work / f"int8-{level}"
            predictions[name] = work / f"predictions-int8-{level}.conll"
            results[name] = scored(nlp, dev, predictions=predictions[name])
            typer.echo(f"{name}: F1 {results[name]['f1']:.4f}")
            if emulate_cpu:
                nlp.to_disk(int8_pipelines[name])
        record: Dict[str, Any] = {**script_provenance(), "settings": {"dev_docs": dev_docs}, "results": results}
        if emulate_cpu:
            record["emulated"] = emulated(emulate_cpu, int8_pipelines, dev, work)
            for name, run in record["emulated"]["results"].items():
                here, there = predicted_sentences(predictions[name]), predicted_sentences(run.pop("predictions"))
                run["sentences_differing"] = sum(a != b for a, b in zip(here, there)) + abs(len(here) - len(there))
    write_json(output_json, record)


RESULTS_PREFIX = "int8_weight_range_"


def dev_cell(run: Dict[str, Any]) -> str:
    """The dev sentences a run scored (runs before --dev-docs scored them all
    and did not count them)."""
    sentences = run["results"]["fp32"].get("sentences")
    if sentences is None:
        return "all"
    return (
        f"first {run['settings']['dev_docs']} Docs, {sentences:,}"
        if run["settings"]["dev_docs"]
        else f"all, {sentences:,}"
    )


def emulated_markdown(runs: List[Tuple[str, Dict[str, Any]]]) -> List[str]:
    """The runs with --emulate-cpu: each graph's dev F1 here and under
    emulation, and the sentences whose entities differ between the two."""
    emulated_runs = [(name, run) for name, run in runs if "emulated" in run]
    if not emulated_runs:
        return []
    lines = [
        "",
        "The same int8 graphs scored by scripts/evaluate.py under QEMU's user-mode emulation of another CPU model "
        "(`--emulate-cpu`), where ONNX Runtime takes that CPU's kernels: the accuracy of that kind of CPU, not its "
        "speed. Differing: dev sentences whose predicted entities differ between the run's own CPU and the emulated one.",
        "",
        "| Run | Emulated CPU (as its process saw it) | "
        + " | ".join(f"int8, [-{n}, {n}]: here | emulated | differing" for n in WEIGHT_LEVELS)
        + " |",
        "|---|---|" + "---:|---:|---:|" * len(WEIGHT_LEVELS),
    ]
    for name, run in emulated_runs:
        emulation = run["emulated"]
        seen = emulation["cpu_seen"]
        cells = [
            name,
            f"`{emulation['cpu_model']}` (torch {seen['torch_cpu_capability']}; {seen['int8_dot_products']})",
        ]
        for level in WEIGHT_LEVELS:
            here, there = run["results"][int8_variant(level)], emulation["results"][int8_variant(level)]
            cells += [f"{100 * here['f1']:.2f}", f"{100 * there['f1']:.2f}", f"{there['sentences_differing']:,}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report_markdown(runs: List[Tuple[str, Dict[str, Any]]]) -> str:
    """The recorded runs (name: the results file's name after
    RESULTS_PREFIX): dev F1 in fp32 and through each weight range, the
    emulated CPU's where a run has one, then each run's command, machine
    and date."""
    lines = [
        "## What the int8 encoder's 7-bit weights cost (`benchmarks/int8_weight_range.py`)",
        "",
        "Dev F1 of a trained pipeline in fp32 (torch) and through per-row int8 graphs whose weights use [-64, 64] "
        "(the default, which cannot saturate on AVX2 CPUs) and the full [-127, 127], on the run's CPU.",
        "",
        "| Run | Dev sentences | fp32 | " + " | ".join(f"int8, [-{level}, {level}]" for level in WEIGHT_LEVELS) + " |",
        "|---|---|---:|" + "---:|" * len(WEIGHT_LEVELS),
    ]
    for name, run in runs:
        scores = [run["results"]["fp32"]] + [run["results"][int8_variant(n)] for n in WEIGHT_LEVELS]
        lines.append(f"| {name} | {dev_cell(run)} | " + " | ".join(f"{100 * s['f1']:.2f}" for s in scores) + " |")
    lines += emulated_markdown(runs)
    lines.append("")
    for _, run in runs:
        emulation = run.get("emulated")
        lines += [
            f"`{run['command']}`  ",
            f"Date: {run['date']}  ",
            machine_line(run["machine"]),
            *([f"Emulation: {emulation['qemu']}  "] if emulation else []),
            *remarks(run),
            "",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    app()

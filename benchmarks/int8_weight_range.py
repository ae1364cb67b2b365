"""What the int8 encoder's 7-bit weights cost: a trained pipeline's dev F1
in fp32 (torch) and through per-row int8 graphs whose weights use
[-64, 64] (the default, which cannot saturate on AVX2 CPUs) and the full
[-127, 127], on this machine's CPU. Run on a CPU with VNNI or AMX, where
the full range does not saturate, it measures the remedy's price in
accuracy; the speed is the same (the same kernels, the same int8 bytes).
The figures go to --output-json (benchmarks/results/int8_weight_range_*.json),
from which BENCHMARKS.md renders them."""

import copy
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import spacy
import typer
from common import machine_line, script_provenance

from conll_ner.evaluation.metrics import evaluate_docbin
from conll_ner.files import write_json
from conll_ner.packaging.int8 import export_int8_graph, export_settings
from conll_ner.pipeline.library_internals import torch_model
from conll_ner.pipeline.prediction_runtime import prediction_runtime, transformer_shims

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])
WEIGHT_LEVELS = (64, 127)
FP32 = {"components.transformer.model.cpu_int8": False, "components.transformer.model.cpu_bfloat16": False}


def scored(nlp: spacy.Language, dev: Path) -> Dict[str, Any]:
    started = time.perf_counter()
    metrics, _ = evaluate_docbin(nlp, dev)
    return {
        "f1": metrics["ents_f"],
        "precision": metrics["ents_p"],
        "recall": metrics["ents_r"],
        "seconds": time.perf_counter() - started,
        "runtime": prediction_runtime(nlp),
    }


@app.command()
def main(
    pipeline: Path = typer.Argument(..., exists=True, file_okay=False, help="A trained transformer pipeline"),
    dev: Path = typer.Argument(..., exists=True, dir_okay=False, help="Its dev DocBin, e.g. corpus/dev/en.spacy"),
    output_json: Path = typer.Option(..., "--output-json"),
) -> None:
    results: Dict[str, Any] = {"fp32": scored(spacy.load(pipeline, config=FP32), dev)}
    typer.echo(f"fp32: F1 {results['fp32']['f1']:.4f}")
    for level in WEIGHT_LEVELS:
        nlp = spacy.load(pipeline)
        (shim,) = transformer_shims(nlp)
        with tempfile.TemporaryDirectory() as tmp:
            graph = Path(tmp) / "int8.onnx"
            export_int8_graph(copy.deepcopy(torch_model(shim)), graph, weight_level=level)
            shim.set_int8_graph(graph.read_bytes(), export_settings())
        name = f"int8, weights in [-{level}, {level}]"
        results[name] = scored(nlp, dev)
        typer.echo(f"{name}: F1 {results[name]['f1']:.4f}")
    write_json(
        output_json,
        {
            **script_provenance(),
            "results": results,
        },
    )


RESULTS_PREFIX = "int8_weight_range_"


def report_markdown(runs: List[Tuple[str, Dict[str, Any]]]) -> str:
    """One table of the recorded runs (name: the results file's name after
    RESULTS_PREFIX): dev F1 in fp32 and through each weight range, then each
    run's command, machine and date."""
    lines = [
        "## What the int8 encoder's 7-bit weights cost (`benchmarks/int8_weight_range.py`)",
        "",
        "Dev F1 of a trained pipeline in fp32 (torch) and through per-row int8 graphs whose weights use [-64, 64] "
        "(the default, which cannot saturate on AVX2 CPUs) and the full [-127, 127], on the run's CPU.",
        "",
        "| Run | fp32 | " + " | ".join(f"int8, [-{level}, {level}]" for level in WEIGHT_LEVELS) + " |",
        "|---|---:|" + "---:|" * len(WEIGHT_LEVELS),
    ]
    for name, run in runs:
        scores = [run["results"]["fp32"]] + [run["results"][f"int8, weights in [-{n}, {n}]"] for n in WEIGHT_LEVELS]
        lines.append(f"| {name} | " + " | ".join(f"{100 * s['f1']:.2f}" for s in scores) + " |")
    lines.append("")
    for _, run in runs:
        lines += [f"`{run['command']}`  ", f"Date: {run['date']}  ", machine_line(run["machine"]), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    app()

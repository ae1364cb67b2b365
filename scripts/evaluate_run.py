"""The workflow's evaluate step: score a trained pipeline on the dev and test
set of each of its languages (scripts/evaluate.py does one file)."""

import json
from pathlib import Path

import spacy
import typer
from wasabi import msg

from conll_ner.evaluation.metrics import evaluate_docbin, runtime_words, score_summary, write_evaluation
from conll_ner.files import write_atomically
from conll_ner.runs import evaluation_paths


def main(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name"),
    output_dir: Path = typer.Argument(..., help="metrics/<run>: one folder per split and language"),
    lang: str = typer.Option(..., "--lang", help="en, es, nl or multi"),
    corpus_dir: Path = typer.Option(Path("corpus"), "--corpus", help="Output folder of the convert step"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, or -1 for the CPU"),
) -> None:
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(model)
    summary = {}
    for name, data_path in evaluation_paths(corpus_dir, lang).items():
        metrics, examples = evaluate_docbin(nlp, data_path, per_sentence=True)
        write_evaluation(output_dir / name, metrics, examples, f"{model} on {name}")
        summary[name] = score_summary(metrics)
        msg.good(
            f"{name}: P {metrics['ents_p']:.4f} R {metrics['ents_r']:.4f} F1 {metrics['ents_f']:.4f} "
            f"({runtime_words(metrics['runtime'])})"
        )
    write_atomically(output_dir / "metrics.json", (json.dumps(summary, indent=2) + "\n").encode("utf8"))


if __name__ == "__main__":
    typer.run(main)

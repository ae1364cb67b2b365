"""Evaluate a pipeline on a CoNLL DocBin with conlleval/seqeval entity scores."""

from pathlib import Path

import spacy
import typer
from wasabi import msg

from conll_ner.evaluation.metrics import evaluate_docbin, runtime_words, write_evaluation


def main(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name"),
    data_path: Path = typer.Argument(..., help=".spacy file to evaluate on", exists=True, dir_okay=False),
    output_dir: Path = typer.Option(
        ..., "--output", "-o", help="Folder for metrics.json, metrics.md, predictions.conll"
    ),
    per_sentence: bool = typer.Option(
        False, "--per-sentence", help="Also score with entities cut at sentence boundaries"
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for the CPU"),
) -> None:
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(model)
    msg.info(f"Evaluating {model} on {data_path}")
    metrics, examples = evaluate_docbin(nlp, data_path, per_sentence=per_sentence)
    write_evaluation(output_dir, metrics, examples, f"{model} on {data_path.name}")
    msg.good(
        f"P {metrics['ents_p'] * 100:.2f}  R {metrics['ents_r'] * 100:.2f}  F1 {metrics['ents_f'] * 100:.2f} "
        f"({metrics['n_tokens']} tokens, {metrics['speed']:.0f} tokens/s, {runtime_words(metrics['runtime'])}) "
        f"-> {output_dir}/metrics.json"
    )


if __name__ == "__main__":
    typer.run(main)

"""Evaluate a pipeline on a CoNLL DocBin with conlleval/seqeval entity scores,
or with --lang on the dev and test set of each of the run's languages (the
workflow's evaluate step)."""

from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from conll_ner.evaluation.evaluate import evaluate_file, evaluate_run


def main(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name"),
    data_path: Optional[Path] = typer.Argument(
        None, help=".spacy file to evaluate on (not with --lang)", exists=True, dir_okay=False
    ),
    output_dir: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Folder for metrics.json, metrics.md, predictions.conll; with --lang metrics/<run>: "
        "one such folder per split and language, and a metrics.json of them all",
    ),
    per_sentence: bool = typer.Option(
        False, "--per-sentence", help="Also score with entities cut at sentence boundaries (always with --lang)"
    ),
    lang: str = typer.Option(
        "", "--lang", help="en, es, nl or multi: the dev and test set of each of its languages instead of one file"
    ),
    corpus_dir: Path = typer.Option(Path("corpus"), "--corpus", help="Output folder of the convert step"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for the CPU"),
) -> None:
    """Score MODEL on the gold tokens of DATA_PATH, or with --lang on the
    run's dev and test sets."""
    if (data_path is None) == (not lang):
        msg.fail("Give either a .spacy file or --lang", exits=1)
    if data_path is not None:
        evaluate_file(model, data_path, output_dir, msg, per_sentence=per_sentence, gpu_id=gpu_id)
    else:
        evaluate_run(model, output_dir, lang, msg, corpus_dir=corpus_dir, gpu_id=gpu_id)


if __name__ == "__main__":
    typer.run(main)

"""The evaluate step: a pipeline scored on the gold tokens of one DocBin, or
on the dev and test set of each of a run's languages, written as the metrics
files (metrics.json, metrics.md, predictions.conll) the model card and
external scorers read. Progress goes to `msg` (a wasabi Printer), as spaCy's
own commands report it."""

from pathlib import Path
from typing import Any, Dict, Union

import spacy
from spacy.language import Language
from wasabi import Printer

from ..files import write_json
from ..runs import evaluation_paths
from .metrics import evaluate_docbin, runtime_words, score_summary, write_evaluation


def load_pipeline(model: str, gpu_id: int) -> Language:
    """The pipeline to score, on GPU `gpu_id` (-1: the CPU); spaCy must be
    told the device before it loads the pipeline."""
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return spacy.load(model)


def evaluate_file(
    model: str,
    data_path: Path,
    output_dir: Union[str, Path],
    msg: Printer,
    *,
    per_sentence: bool = False,
    gpu_id: int = -1,
) -> Dict[str, Any]:
    """Score `model` on one DocBin into output_dir; the metrics."""
    nlp = load_pipeline(model, gpu_id)
    msg.info(f"Evaluating {model} on {data_path}")
    metrics, examples = evaluate_docbin(nlp, data_path, per_sentence=per_sentence)
    write_evaluation(output_dir, metrics, examples, f"{model} on {data_path.name}")
    msg.good(
        f"P {metrics['ents_p'] * 100:.2f}  R {metrics['ents_r'] * 100:.2f}  F1 {metrics['ents_f'] * 100:.2f} "
        f"({metrics['n_tokens']} tokens, {metrics['speed']:.0f} tokens/s, {runtime_words(metrics['runtime'])}) "
        f"-> {output_dir}/metrics.json"
    )
    return metrics


def evaluate_run(
    model: str,
    output_dir: Union[str, Path],
    lang: str,
    msg: Printer,
    *,
    corpus_dir: Union[str, Path] = "corpus",
    gpu_id: int = -1,
) -> Dict[str, Dict[str, Any]]:
    """Score `model` on the dev and test set of each of `lang`'s languages,
    with per-sentence scores: one folder per split and language in
    output_dir, and output_dir/metrics.json with each one's summary, which
    the package step's model card reads. Returns that summary."""
    output_dir = Path(output_dir)
    nlp = load_pipeline(model, gpu_id)
    summary = {}
    for name, data_path in evaluation_paths(corpus_dir, lang).items():
        metrics, examples = evaluate_docbin(nlp, data_path, per_sentence=True)
        write_evaluation(output_dir / name, metrics, examples, f"{model} on {name}")
        summary[name] = score_summary(metrics)
        msg.good(
            f"{name}: P {metrics['ents_p']:.4f} R {metrics['ents_r']:.4f} F1 {metrics['ents_f']:.4f} "
            f"({runtime_words(metrics['runtime'])})"
        )
    write_json(output_dir / "metrics.json", summary)
    return summary

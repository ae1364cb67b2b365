"""The scores a package's int8 encoder gives where it is served."""

from pathlib import Path
from typing import Any, Dict, Optional

import spacy
from wasabi import Printer

from ..evaluation.metrics import evaluate_docbin, score_summary
from ..pipeline.cpu_features import int8_dot_products
from ..pipeline.prediction_runtime import prediction_runtime
from ..runs import evaluation_paths


def served_int8_scores(pipeline_dir: Path, corpus_dir: Path, lang: str, msg: Printer) -> Optional[Dict[str, Any]]:
    """The dev and test scores of the package's int8 encoder, as users' CPUs
    will compute them, beside the torch scores of the evaluate step, each
    naming how this CPU sums int8 dot products: of every split whose file is
    there (a missing one is named, and the others are still measured); None
    where this machine cannot predict in int8 or no file is there."""
    nlp = spacy.load(pipeline_dir)
    if prediction_runtime(nlp)["precision"] != "int8":
        msg.warn("This machine does not predict in int8 (onnxruntime is not installed): no served int8 scores")
        return None
    paths = evaluation_paths(corpus_dir, lang)
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        msg.warn(f"No served int8 scores on {', '.join(missing)}: missing (the convert step writes them)")
    scores = {}
    for name, path in paths.items():
        if not path.is_file():
            continue
        metrics, _ = evaluate_docbin(nlp, path)
        scores[name] = {**score_summary(metrics), "int8_dot_products": int8_dot_products()}
        msg.good(f"{name}, served in int8: F1 {metrics['ents_f']:.4f} (int8 dot products: {int8_dot_products()})")
    return scores or None

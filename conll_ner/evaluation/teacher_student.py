"""The distill-evaluate step's comparison: teacher and student on the dev
set, on the CPU, one after the other in one process, so that their dev F1 and
words per second are comparable. Progress goes to `msg` (a wasabi Printer),
as spaCy's own commands report it."""

import json
from pathlib import Path
from typing import Any, Dict, List

import spacy
from spacy.language import Language
from wasabi import Printer

from ..files import write_json
from ..runs import evaluation_paths
from ..training.distillation import SUMMARY_FILE, DistillationError, load_teacher
from .metrics import evaluate_docbin, words_per_second


def scores_and_speed(nlp: Language, dev_paths: Dict[str, Path]) -> Dict[str, object]:
    """Dev scores (seqeval, on the gold tokens) per language and CPU words
    per second on the same Docs."""
    result: Dict[str, object] = {}
    words: List[List[str]] = []
    for name, path in dev_paths.items():
        metrics, examples = evaluate_docbin(nlp, path)
        result[name] = {key: metrics[key] for key in ("ents_p", "ents_r", "ents_f")}
        words.extend([token.text for token in eg.reference] for eg in examples)
    result["words_per_second"] = words_per_second(nlp, words)
    return result


def compare_teacher_student(
    teacher: str, student: str, data_dir: Path, output: Path, msg: Printer, *, lang: str, corpus_dir: Path
) -> Dict[str, Any]:
    """The distill-data step's distillation.json (in data_dir) with both
    pipelines' dev scores and speeds and the student's speed-up, written to
    `output`, which the model card reads; returns it. Raises
    DistillationError where the data step has not run."""
    summary_path = data_dir / SUMMARY_FILE
    if not summary_path.is_file():
        raise DistillationError(f"{summary_path} does not exist: run `spacy project run distill-data` first")
    summary = json.loads(summary_path.read_text(encoding="utf8"))
    dev_paths = evaluation_paths(corpus_dir, lang, splits=("dev",))
    side_by_side = {}
    for role, model in (("teacher", teacher), ("student", student)):
        nlp = load_teacher(model) if role == "teacher" else spacy.load(model)
        side_by_side[role] = scores_and_speed(nlp, dev_paths)
        scores = ", ".join(f"{name} F1 {side_by_side[role][name]['ents_f']:.4f}" for name in dev_paths)
        msg.info(f"{role} {model}: {scores}, {side_by_side[role]['words_per_second']:.0f} words/s on the CPU")
    speedup = side_by_side["student"]["words_per_second"] / side_by_side["teacher"]["words_per_second"]
    result = {**summary, "student": student, "dev": side_by_side, "student_speedup": speedup}
    write_json(output, result)
    msg.good(f"The student runs {speedup:.1f}x the teacher's words/s on the CPU -> {output}")
    return result

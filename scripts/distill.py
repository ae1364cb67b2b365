"""The distill workflow's own steps: the teacher annotates unlabelled text into
a silver corpus beside the gold one (`data`), and after the student has
trained, teacher and student are scored and timed side by side (`compare`)."""

import json
from pathlib import Path
from typing import Dict, List

import spacy
import typer
from spacy.tokens import DocBin
from wasabi import msg

from conll_ner.evaluation.metrics import evaluate_docbin, words_per_second
from conll_ner.runs import evaluation_paths, spacy_lang, training_path
from conll_ner.training.distillation import (
    GOLD_FILE,
    SILVER_FILE,
    SUMMARY_FILE,
    DistillationError,
    check_teacher,
    count_unlabelled,
    docbin_labels,
    read_unlabelled,
    teacher_description,
    teacher_predictions,
    write_docs,
    write_gold_copies,
    write_json,
)

app = typer.Typer(add_completion=False, help=__doc__)


def load_teacher(teacher: str, gpu_id: int) -> spacy.Language:
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        return spacy.load(teacher)
    except OSError as err:
        msg.fail(
            f"Cannot load the teacher {teacher!r}: give a pipeline folder or an installed package name "
            "(the default is the `all` run's model-best: run `spacy project run all` first)",
            str(err),
            exits=1,
        )


@app.command("data")
def data_command(
    teacher: str = typer.Argument(..., help="Trained pipeline folder or installed package name"),
    output_dir: Path = typer.Argument(..., help="The student's training folder (corpus/distill/<student_run>)"),
    lang: str = typer.Option(..., "--lang", help="en, es, nl or multi: the gold corpus and the student's language"),
    unlabelled: str = typer.Option(
        "", "--unlabelled", help="File or folder: .txt (one document per line), .jsonl, .spacy; empty: none"
    ),
    text_field: str = typer.Option("text", "--text-field", help="The text field of JSONL lines"),
    gold_weight: int = typer.Option(
        1, "--gold-weight", help="Copies of the gold corpus beside the silver in each epoch"
    ),
    corpus_dir: Path = typer.Option(Path("corpus"), "--corpus", help="Output folder of the convert step"),
    batch_size: int = typer.Option(32, "--batch-size", help="Documents per teacher batch"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id for the teacher, or -1 for the CPU"),
) -> None:
    """Write gold.spacy (gold_weight copies of the gold training corpus) and
    silver.spacy (the unlabelled text with the teacher's entities) into
    output_dir, which the student trains on, and distillation.json."""
    gold_path = training_path(corpus_dir, lang, "train")
    if not gold_path.exists():
        msg.fail(f"{gold_path} does not exist: run `spacy project run convert` first", exits=1)
    nlp = load_teacher(teacher, gpu_id)
    gold_files = [gold_path] if gold_path.is_file() else sorted(gold_path.glob("*.spacy"))
    gold_labels = set().union(*(docbin_labels(path, nlp.vocab) for path in gold_files))
    try:
        check_teacher(nlp, gold_labels, spacy_lang(lang))
        if unlabelled:
            total = count_unlabelled(unlabelled)
            msg.info(f"The teacher {teacher} annotates {total} documents of {unlabelled}")
            silver_docs = teacher_predictions(
                nlp, read_unlabelled(unlabelled, nlp.vocab, text_field), batch_size, total
            )
        else:
            msg.warn("No unlabelled text (--vars.unlabelled): the student trains on the gold corpus alone")
            silver_docs = iter([])
        silver = write_docs(silver_docs, output_dir / SILVER_FILE)
        gold_docs = [doc for path in gold_files for doc in DocBin().from_disk(path).get_docs(nlp.vocab)]
        gold = write_gold_copies(gold_docs, output_dir / GOLD_FILE, gold_weight)
    except DistillationError as err:
        msg.fail(str(err), exits=1)
    write_json(
        output_dir / SUMMARY_FILE,
        {
            **teacher_description(nlp, teacher),
            "unlabelled": unlabelled,
            "silver": silver.to_dict(),
            "gold": {**gold.to_dict(), "copies": gold_weight},
        },
    )
    msg.good(
        f"Silver: {silver.docs} documents, {silver.words} words, {silver.to_dict()['entities_total']} entities "
        f"{silver.entities}; gold: {gold.docs} documents x {gold_weight} -> {output_dir}"
    )


def scores_and_speed(nlp: spacy.Language, dev_paths: Dict[str, Path]) -> Dict[str, object]:
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


@app.command("compare")
def compare_command(
    teacher: str = typer.Argument(..., help="The teacher the data step used"),
    student: str = typer.Argument(..., help="The student's model-best"),
    data_dir: Path = typer.Argument(..., help="The student's training folder, with the data step's distillation.json"),
    output: Path = typer.Argument(..., help="metrics/<student_run>/distillation.json, which the model card reads"),
    lang: str = typer.Option(..., "--lang", help="en, es, nl or multi"),
    corpus_dir: Path = typer.Option(Path("corpus"), "--corpus", help="Output folder of the convert step"),
) -> None:
    """Teacher and student on the dev set, on the CPU, one after the other in
    one process: their dev F1 and words per second are comparable."""
    summary_path = data_dir / SUMMARY_FILE
    if not summary_path.is_file():
        msg.fail(f"{summary_path} does not exist: run `spacy project run distill-data` first", exits=1)
    summary = json.loads(summary_path.read_text(encoding="utf8"))
    dev_paths = evaluation_paths(corpus_dir, lang, splits=("dev",))
    side_by_side = {}
    for role, model in (("teacher", teacher), ("student", student)):
        nlp = load_teacher(model, -1) if role == "teacher" else spacy.load(model)
        side_by_side[role] = scores_and_speed(nlp, dev_paths)
        scores = ", ".join(f"{name} F1 {side_by_side[role][name]['ents_f']:.4f}" for name in dev_paths)
        msg.info(f"{role} {model}: {scores}, {side_by_side[role]['words_per_second']:.0f} words/s on the CPU")
    speedup = side_by_side["student"]["words_per_second"] / side_by_side["teacher"]["words_per_second"]
    write_json(output, {**summary, "student": student, "dev": side_by_side, "student_speedup": speedup})
    msg.good(f"The student runs {speedup:.1f}x the teacher's words/s on the CPU -> {output}")


if __name__ == "__main__":
    app()

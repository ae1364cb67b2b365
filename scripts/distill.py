"""The distill workflow's own steps: the teacher annotates unlabelled text into
a silver corpus beside the gold one (`data`), and after the student has
trained, teacher and student are scored and timed side by side (`compare`)."""

import json
from pathlib import Path
from typing import Dict, List

import spacy
import typer
from spacy.tokens import DocBin
from spacy.vocab import Vocab
from wasabi import msg

from conll_ner.evaluation.metrics import evaluate_docbin, words_per_second
from conll_ner.files import write_json
from conll_ner.inference.settings import ENGINES, AnnotateError
from conll_ner.runs import evaluation_paths, spacy_lang, training_path
from conll_ner.training.distillation import (
    ANNOTATIONS_DIR,
    GOLD_FILE,
    SILVER_DIR,
    SUMMARY_FILE,
    DistillationError,
    annotate_unlabelled,
    check_teacher,
    docbin_labels,
    teacher_description,
    write_gold_copies,
)
from conll_ner.training.silver import SilverStats, build_silver, clear_silver, teacher_tokenizer

app = typer.Typer(add_completion=False, help=__doc__)

# the annotate summary's counts that distillation.json keeps
ANNOTATE_COUNTS = (
    "engine",
    "shards",
    "shards_done",
    "shards_skipped",
    "shards_failed",
    "documents_done",
    "documents_failed",
    "documents_skipped",
    "words",
    "retried_batches",
    "seconds",
    "words_per_second",
)


def load_teacher(teacher: str) -> spacy.Language:
    try:
        return spacy.load(teacher)
    except OSError as err:
        msg.fail(
            f"Cannot load the teacher {teacher!r}: give a pipeline folder or an installed package name "
            "(the default is the `all` run's model-best: run `spacy project run all` first)",
            str(err),
            exits=1,
        )


def remove_stray_docbins(output_dir: Path) -> None:
    """spacy.Corpus trains on every .spacy file below the student's folder:
    one this step did not write (the single silver.spacy of earlier
    versions) would be trained on beside the silver folder."""
    for path in sorted(output_dir.glob("*.spacy")):
        if path.name != GOLD_FILE:
            msg.warn(f"Removing {path}: the student would train on it beside {output_dir / SILVER_DIR}")
            path.unlink()


@app.command("data")
def data_command(
    teacher: str = typer.Argument(..., help="Trained pipeline folder or installed package name"),
    output_dir: Path = typer.Argument(..., help="The student's training folder (corpus/distill/<student_run>)"),
    lang: str = typer.Option(..., "--lang", help="en, es, nl or multi: the gold corpus and the student's language"),
    unlabelled: str = typer.Option(
        "",
        "--unlabelled",
        help="A file, folder or quoted glob of .jsonl, .txt (one document per line) or .parquet files; empty: none",
    ),
    gold_weight: int = typer.Option(
        1, "--gold-weight", help="Copies of the gold corpus beside the silver in each epoch"
    ),
    corpus_dir: Path = typer.Option(Path("corpus"), "--corpus", help="Output folder of the convert step"),
    engine: str = typer.Option("local", "--engine", help=f"The annotate engine: {' or '.join(ENGINES)}"),
    workers: int = typer.Option(1, "--workers", help="local: processes; ray: actors, each loading the teacher"),
    gpus: float = typer.Option(0, "--gpus", help="GPUs per worker (local: > 0 runs the teacher on GPU 0)"),
    max_chars: int = typer.Option(
        10_000, "--max-chars", help="Longer texts are annotated in pieces, and become one silver Doc per piece"
    ),
    text_field: str = typer.Option("text", "--text-field", help="The text field of JSONL lines and parquet rows"),
    id_field: str = typer.Option("id", "--id-field", help="The id field of JSONL lines and parquet rows"),
    ray_address: str = typer.Option("", "--ray-address", help="ray: auto, an address, or empty for a local Ray"),
    batch_size: int = typer.Option(32, "--batch-size", help="Documents per teacher batch"),
) -> None:
    """Write gold.spacy (gold_weight copies of the gold training corpus) and
    silver/ (one DocBin per input file, the teacher's entities on its texts)
    into output_dir, which the student trains on, and distillation.json. The
    teacher annotates through the annotate engine into
    output_dir/teacher_annotations; a rerun of the same command resumes both
    the annotation and the silver files where the last one stopped."""
    gold_path = training_path(corpus_dir, lang, "train")
    if not gold_path.exists():
        msg.fail(f"{gold_path} does not exist: run `spacy project run convert` first", exits=1)
    nlp = load_teacher(teacher)
    gold_files = [gold_path] if gold_path.is_file() else sorted(gold_path.glob("*.spacy"))
    gold_labels = set().union(*(docbin_labels(path, nlp.vocab) for path in gold_files))
    try:
        check_teacher(nlp, gold_labels, spacy_lang(lang))
    except DistillationError as err:
        msg.fail(str(err), exits=1)
    description = teacher_description(nlp, teacher)
    # the engine loads the teacher in its own workers; the checks' copy goes
    del nlp
    output_dir.mkdir(parents=True, exist_ok=True)
    remove_stray_docbins(output_dir)
    silver_dir, annotations_dir = output_dir / SILVER_DIR, output_dir / ANNOTATIONS_DIR
    annotated: Dict[str, object] = {}
    try:
        if unlabelled:
            msg.info(f"The teacher {teacher} annotates {unlabelled} ({engine} engine) -> {annotations_dir}")
            summary = annotate_unlabelled(
                teacher,
                unlabelled,
                annotations_dir,
                msg.warn,
                engine=engine,
                workers=workers,
                gpus=gpus,
                max_chars=max_chars,
                text_field=text_field,
                id_field=id_field,
                ray_address=ray_address,
                batch_size=batch_size,
            )
            annotated = {key: summary[key] for key in ANNOTATE_COUNTS}
            msg.info(
                f"Annotated: {summary['documents_done']:,} documents done, {summary['documents_skipped']:,} skipped "
                f"(finished before), {summary['documents_failed']:,} failed; shards: {summary['shards_done']} done, "
                f"{summary['shards_skipped']} skipped, {summary['shards_failed']} failed"
            )
            for reason in summary["failed_shards"]:
                msg.fail(f"Shard not annotated: {reason}")
            if summary["shards_failed"]:
                msg.fail("Some shards could not be read: fix them and rerun the same command", exits=1)
            built = build_silver(annotations_dir, silver_dir, teacher_tokenizer(teacher))
            silver = {**built.stats.to_dict(), "shards": built.shards, "built": built.built, "reused": built.reused}
            msg.info(f"Silver shards: {built.built} built, {built.reused} unchanged -> {silver_dir}")
        else:
            msg.warn("No unlabelled text (--vars.unlabelled): the student trains on the gold corpus alone")
            clear_silver(silver_dir)
            silver = {**SilverStats().to_dict(), "shards": 0, "built": 0, "reused": 0}
        gold_docs = [doc for path in gold_files for doc in DocBin().from_disk(path).get_docs(Vocab())]
        gold = write_gold_copies(gold_docs, output_dir / GOLD_FILE, gold_weight)
    except (AnnotateError, DistillationError) as err:
        msg.fail(str(err), exits=1)
    write_json(
        output_dir / SUMMARY_FILE,
        {
            **description,
            "unlabelled": unlabelled,
            "annotate": annotated,
            "silver": silver,
            "gold": {**gold.to_dict(), "copies": gold_weight},
        },
    )
    errors = silver.get("errors", 0)
    msg.good(
        f"Silver: {silver['docs']:,} documents, {silver['words']:,} words, {silver['entities_total']:,} entities "
        f"{silver['entities']}"
        + (f", {errors:,} skipped for errors (their rows in {annotations_dir} say why)" if errors else "")
        + f"; gold: {gold.docs} documents x {gold_weight} -> {output_dir}"
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
        nlp = load_teacher(model) if role == "teacher" else spacy.load(model)
        side_by_side[role] = scores_and_speed(nlp, dev_paths)
        scores = ", ".join(f"{name} F1 {side_by_side[role][name]['ents_f']:.4f}" for name in dev_paths)
        msg.info(f"{role} {model}: {scores}, {side_by_side[role]['words_per_second']:.0f} words/s on the CPU")
    speedup = side_by_side["student"]["words_per_second"] / side_by_side["teacher"]["words_per_second"]
    write_json(output, {**summary, "student": student, "dev": side_by_side, "student_speedup": speedup})
    msg.good(f"The student runs {speedup:.1f}x the teacher's words/s on the CPU -> {output}")


if __name__ == "__main__":
    app()

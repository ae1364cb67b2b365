"""The distill-data step: the student's training folder (corpus/distill/<run>)
with gold.spacy (gold_weight copies of the gold training corpus), silver/
(one DocBin per input file, the teacher's entities on its texts, built from
the annotate engine's shards in teacher_annotations/) and distillation.json.
A rerun of the same step resumes both the annotation and the silver files
where the last one stopped. Progress goes to `msg` (a wasabi Printer), as
spaCy's own commands report it."""

from pathlib import Path
from typing import Any, Dict

from spacy.tokens import DocBin
from spacy.vocab import Vocab
from wasabi import Printer

from ..files import write_json
from ..runs import spacy_lang, training_path
from .distillation import (
    ANNOTATIONS_DIR,
    GOLD_FILE,
    SILVER_DIR,
    SUMMARY_FILE,
    DistillationError,
    annotate_unlabelled,
    check_teacher,
    docbin_labels,
    load_teacher,
    teacher_description,
    write_gold_copies,
)
from .silver import SilverStats, build_silver, clear_silver, teacher_tokenizer

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


def remove_stray_docbins(output_dir: Path, msg: Printer) -> None:
    """spacy.Corpus trains on every .spacy file below the student's folder:
    one this step did not write (the single silver.spacy of earlier
    versions) would be trained on beside the silver folder."""
    for path in sorted(output_dir.glob("*.spacy")):
        if path.name != GOLD_FILE:
            msg.warn(f"Removing {path}: the student would train on it beside {output_dir / SILVER_DIR}")
            path.unlink()


def annotate_silver(
    teacher: str, unlabelled: str, output_dir: Path, msg: Printer, engine: str, **options: Any
) -> Dict[str, Dict[str, Any]]:
    """The teacher annotates `unlabelled` with the annotate engine (`options`:
    its keyword arguments) and the silver DocBins are built from its shards:
    distillation.json's `annotate` and `silver` parts."""
    silver_dir, annotations_dir = output_dir / SILVER_DIR, output_dir / ANNOTATIONS_DIR
    msg.info(f"The teacher {teacher} annotates {unlabelled} ({engine} engine) -> {annotations_dir}")
    summary = annotate_unlabelled(teacher, unlabelled, annotations_dir, msg.warn, engine=engine, **options)
    msg.info(
        f"Annotated: {summary['documents_done']:,} documents done, {summary['documents_skipped']:,} skipped "
        f"(finished before), {summary['documents_failed']:,} failed; shards: {summary['shards_done']} done, "
        f"{summary['shards_skipped']} skipped, {summary['shards_failed']} failed"
    )
    for reason in summary["failed_shards"]:
        msg.fail(f"Shard not annotated: {reason}")
    if summary["shards_failed"]:
        raise DistillationError("Some shards could not be read: fix them and rerun the same command")
    built = build_silver(annotations_dir, silver_dir, teacher_tokenizer(teacher))
    msg.info(f"Silver shards: {built.built} built, {built.reused} unchanged -> {silver_dir}")
    return {
        "annotate": {key: summary[key] for key in ANNOTATE_COUNTS},
        "silver": {**built.stats.to_dict(), "shards": built.shards, "built": built.built, "reused": built.reused},
    }


def write_student_corpus(
    teacher: str,
    output_dir: Path,
    msg: Printer,
    *,
    lang: str,
    unlabelled: str,
    gold_weight: int,
    corpus_dir: Path,
    engine: str = "local",
    **options: Any,
) -> Dict[str, Any]:
    """Check the teacher against the gold corpus, then write the student's
    folder (see the module's docstring); returns what distillation.json
    holds. Raises DistillationError (TeacherLoadError for a teacher spaCy
    cannot load) or AnnotateError."""
    gold_path = training_path(corpus_dir, lang, "train")
    if not gold_path.exists():
        raise DistillationError(f"{gold_path} does not exist: run `spacy project run convert` first")
    nlp = load_teacher(teacher)
    gold_files = [gold_path] if gold_path.is_file() else sorted(gold_path.glob("*.spacy"))
    gold_labels = set().union(*(docbin_labels(path, nlp.vocab) for path in gold_files))
    check_teacher(nlp, gold_labels, spacy_lang(lang))
    description = teacher_description(nlp, teacher)
    # the engine loads the teacher in its own workers; the checks' copy goes
    del nlp
    output_dir.mkdir(parents=True, exist_ok=True)
    remove_stray_docbins(output_dir, msg)
    if unlabelled:
        annotated = annotate_silver(teacher, unlabelled, output_dir, msg, engine, **options)
    else:
        msg.warn("No unlabelled text (--vars.unlabelled): the student trains on the gold corpus alone")
        clear_silver(output_dir / SILVER_DIR)
        annotated = {"annotate": {}, "silver": {**SilverStats().to_dict(), "shards": 0, "built": 0, "reused": 0}}
    gold_docs = [doc for path in gold_files for doc in DocBin().from_disk(path).get_docs(Vocab())]
    gold = write_gold_copies(gold_docs, output_dir / GOLD_FILE, gold_weight)
    summary = {**description, "unlabelled": unlabelled, **annotated, "gold": {**gold.to_dict(), "copies": gold_weight}}
    write_json(output_dir / SUMMARY_FILE, summary)
    silver = summary["silver"]
    errors = silver.get("errors", 0)
    msg.good(
        f"Silver: {silver['docs']:,} documents, {silver['words']:,} words, {silver['entities_total']:,} entities "
        f"{silver['entities']}"
        + (f", {errors:,} skipped for errors (their rows in {output_dir / ANNOTATIONS_DIR} say why)" if errors else "")
        + f"; gold: {gold.docs} documents x {gold_weight} -> {output_dir}"
    )
    return summary

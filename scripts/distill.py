"""The distill workflow's own steps: the teacher annotates unlabelled text into
a silver corpus beside the gold one (`data`), and after the student has
trained, teacher and student are scored and timed side by side (`compare`)."""

from pathlib import Path

import typer
from wasabi import msg

from conll_ner.evaluation.teacher_student import compare_teacher_student
from conll_ner.inference.settings import ENGINES, AnnotateError
from conll_ner.training.distillation import DistillationError, TeacherLoadError
from conll_ner.training.student_corpus import write_student_corpus

app = typer.Typer(add_completion=False, help=__doc__)


def fail(err: Exception) -> None:
    msg.fail(str(err), err.reason if isinstance(err, TeacherLoadError) else "", exits=1)


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
    try:
        write_student_corpus(
            teacher, output_dir, msg, lang=lang, unlabelled=unlabelled, gold_weight=gold_weight,
            corpus_dir=corpus_dir, engine=engine, workers=workers, gpus=gpus, max_chars=max_chars,
            text_field=text_field, id_field=id_field, ray_address=ray_address, batch_size=batch_size,
        )  # fmt: skip
    except (AnnotateError, DistillationError) as err:
        fail(err)


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
    try:
        compare_teacher_student(teacher, student, data_dir, output, msg, lang=lang, corpus_dir=corpus_dir)
    except DistillationError as err:
        fail(err)


if __name__ == "__main__":
    app()

"""Annotate a large corpus with a trained pipeline: one output shard per input
file, resumable, on one machine (local engine) or a Ray cluster (ray engine).
Ends with a summary line (documents and words per second); --summary also
writes it as JSON."""

from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from conll_ner.files import write_json
from conll_ner.inference.annotate import annotate
from conll_ner.inference.settings import AnnotateError
from conll_ner.inference.summary import report_problems, summary_line


def main(
    model: str = typer.Argument(..., help="Pipeline folder or installed package name"),
    inputs: str = typer.Argument(
        ..., help="A file, folder or glob (quoted: 'corpus/*.jsonl') of .jsonl, .txt or .parquet files"
    ),
    output: Path = typer.Argument(..., help="Output folder: one shard per input file, and the manifest"),
    engine: str = typer.Option("local", "--engine", help="local (this machine) or ray (Ray Data, local or a cluster)"),
    output_format: str = typer.Option("jsonl", "--format", help="Output shards: jsonl or parquet"),
    text_field: str = typer.Option("text", "--text-field", help="The text field of JSONL lines and parquet rows"),
    id_field: str = typer.Option("id", "--id-field", help="The id field; without one a document's id is FILE:LINE"),
    batch_size: int = typer.Option(32, "--batch-size", help="Documents per nlp.pipe batch"),
    workers: int = typer.Option(
        1, "--workers", help="local: processes (CPU pipelines); ray: actors (Ray Data concurrency)"
    ),
    gpus: float = typer.Option(
        0, "--gpus", help="GPUs per worker (ray: num_gpus, fractions share one); local: >0 runs on GPU 0"
    ),
    max_chars: int = typer.Option(
        10_000, "--max-chars", help="Longer texts are annotated in pieces of at most this many characters"
    ),
    max_text_chars: int = typer.Option(
        10_000_000, "--max-text-chars", help="Longer texts are error rows, not annotated"
    ),
    ray_address: str = typer.Option(
        "",
        "--ray-address",
        help="ray: 'auto' joins this machine's cluster, an address joins that one, empty starts a local instance",
    ),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Skip finished shards; --no-resume replaces the folder's earlier output"
    ),
    summary_path: Optional[Path] = typer.Option(None, "--summary", help="Also write the summary to this JSON file"),
) -> None:
    msg.info(f"Annotating {inputs} with {model} ({engine} engine) -> {output}")
    try:
        summary = annotate(
            model,
            inputs,
            output,
            engine=engine,
            output_format=output_format,
            text_field=text_field,
            id_field=id_field,
            batch_size=batch_size,
            workers=workers,
            gpus=gpus,
            max_chars=max_chars,
            max_text_chars=max_text_chars,
            resume=resume,
            ray_address=ray_address,
        )
    except AnnotateError as err:
        msg.fail(str(err), exits=1)
    if summary_path is not None:
        write_json(summary_path, summary)
    report_problems(summary, msg)
    line = summary_line(summary, output)
    if summary["shards_failed"]:
        msg.fail(line, exits=1)
    msg.good(line)


if __name__ == "__main__":
    typer.run(main)

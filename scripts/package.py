"""Package a trained pipeline as an installable Python package with its model
card, its int8 encoder (transformer pipelines, where onnxruntime is
installed) and the project code it needs at load time (the scorer and
conll_ner/pipeline/)."""

from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from conll_ner.packaging.naming import pipeline_encoder
from conll_ner.packaging.package import PackagingError, build_package


def main(
    model_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="training/<run>/model-best"),
    output_dir: Path = typer.Argument(..., help="Folder to create the package in"),
    lang: str = typer.Option(..., "--lang", help="en, es, nl or multi"),
    encoder: str = typer.Option(
        "", "--encoder", help="Short encoder name for the package name; empty: derived from the pipeline's transformer"
    ),
    version: str = typer.Option(..., "--version", help="Package version"),
    metrics_path: Path = typer.Option(..., "--metrics", exists=True, help="metrics/<run>/metrics.json"),
    train_log: Path = typer.Option(..., "--train-log", exists=True, help="training/<run>/train_log.jsonl"),
    corpus_dir: Path = typer.Option(
        Path("corpus"), "--corpus", help="Output folder of the convert step: the int8 encoder's served scores"
    ),
    distillation_path: Optional[Path] = typer.Option(
        None,
        "--distillation",
        exists=True,
        dir_okay=False,
        help="A distilled student's metrics/<run>/distillation.json: the card shows the teacher, the name says distilled",
    ),
) -> None:
    """The package is named after the checkpoint the pipeline was trained
    from (its config says which), unless --encoder names it; a distilled
    student's name ends in _distilled."""
    try:
        transformer, encoder = pipeline_encoder(model_dir, encoder)
    except ValueError as err:
        msg.fail(f"--encoder: {err}", exits=1)
    try:
        wheel = build_package(
            model_dir,
            output_dir,
            msg,
            lang=lang,
            transformer=transformer,
            encoder=encoder,
            version=version,
            metrics_path=metrics_path,
            train_log=train_log,
            corpus_dir=corpus_dir,
            distillation_path=distillation_path,
        )
    except PackagingError as err:
        msg.fail(str(err), exits=1)
    # the spaCy language prefix (xx for multi) is only known here, so say the exact path
    print(f"pip install {wheel}")


if __name__ == "__main__":
    typer.run(main)

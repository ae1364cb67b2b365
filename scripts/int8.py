"""Build a transformer pipeline's int8 encoder into the pipeline folder, for
serving it on CPUs (annotate, spacy.load) without packaging it: the package
step does the same. Pipelines trained before conll_ner.TransformerModel.v1
get that architecture (same arguments and weights) on the way."""

from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from conll_ner.packaging.int8 import int8_tools_missing, write_int8_pipeline


def main(
    pipeline: Path = typer.Argument(
        ..., exists=True, file_okay=False, help="A pipeline folder, e.g. training/<run>/model-best"
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write it; default: in place"),
) -> None:
    missing = int8_tools_missing()
    if missing:
        msg.fail(f"Cannot build an int8 encoder: {missing}", exits=1)
    target = output or pipeline
    msg.info(f"Building the int8 encoder of {pipeline} (about ten times the encoder's size in memory)")
    try:
        (settings,) = write_int8_pipeline(pipeline, target)
    except ValueError as err:
        msg.fail(f"{pipeline} cannot get an int8 encoder: {err}", exits=1)
    msg.good(f"{target}: int8 encoder built ({settings['quantization']})")


if __name__ == "__main__":
    typer.run(main)

"""`spacy project run check-gpu`: does the GPU install train? One line per
check (conll_ner/training/gpu_check.py); exits 1 if any check failed or was skipped."""

import sys
from pathlib import Path

import typer

from conll_ner.training.gpu_check import gpu_checks, report


def main(
    config_path: Path = typer.Option(
        Path("configs/transformer.cfg"),
        "--config",
        exists=True,
        dir_okay=False,
        help="Config of the pipeline whose training step is checked",
    ),
    gpu_id: int = typer.Option(0, "--gpu-id", min=0, help="GPU to check"),
) -> None:
    raise typer.Exit(report(gpu_checks(config_path, gpu_id), sys.stdout))


if __name__ == "__main__":
    typer.run(main)

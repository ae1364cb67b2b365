"""Train a pipeline with `spacy train` for a workflow `lang`, after checks that
fail fast with a clear message instead of hours into a run."""

from pathlib import Path
from typing import Optional

import typer
from spacy.cli._util import parse_config_overrides
from wasabi import msg

from conll_ner.training.guard import TrainingHealthError
from conll_ner.training.loop import RunStopped
from conll_ner.training.train import TrainSetupError, train_pipeline


def main(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="configs/<name>.cfg"),
    output_path: Path = typer.Argument(..., help="Training output folder (model-best, model-last)"),
    lang: str = typer.Option(..., "--lang", help="en, es, nl or multi"),
    corpus_dir: Path = typer.Option(Path("corpus"), "--corpus", help="Output folder of the convert step"),
    transformer: Optional[str] = typer.Option(None, "--transformer", help="Hugging Face name or local directory"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, or -1 for the CPU"),
    epochs: float = typer.Option(
        0, "--epochs", help="Passes over the training corpus; 0: the config's [budget] epochs"
    ),
    max_steps: int = typer.Option(0, "--max-steps", help="Cap on the number of updates; 0: none"),
    save_every: float = typer.Option(
        30, "--save-every", help="Minutes between saves of the run's state, which a re-run goes on from; 0: never"
    ),
) -> None:
    """The run's length is `epochs` passes over the training corpus, turned
    into updates, evaluations and patience for this corpus (conll_ner/training/budget.py).
    A checkpoint whose configuration asks for code is refused before it loads
    (conll_ner/training/checkpoints.py).
    Any further `--section.key value` arguments override the config, as in
    `spacy train`; they are applied last, after the plan.
    Every `save_every` minutes the run's state is saved to
    OUTPUT_PATH/resume; the same command run again after an interruption
    goes on from there instead of from the start (conll_ner/training/loop.py)."""
    try:
        train_pipeline(
            config_path, output_path, msg, lang=lang, corpus_dir=corpus_dir, transformer=transformer,
            gpu_id=gpu_id, epochs=epochs, max_steps=max_steps, extra=parse_config_overrides(ctx.args),
            save_every_seconds=60 * save_every,
        )  # fmt: skip
    except TrainSetupError as err:
        msg.fail(str(err), err.detail, exits=1)
    except TrainingHealthError as err:
        msg.fail(str(err), exits=1)
    except RunStopped as err:
        msg.warn(f"Stopped by {err}", exits=130)


if __name__ == "__main__":
    app = typer.Typer(add_completion=False)
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(main)
    app()

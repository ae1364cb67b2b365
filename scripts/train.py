"""Train a pipeline with `spacy train` for a workflow `lang`, after checks that
fail fast with a clear message instead of hours into a run."""

import os
from pathlib import Path
from typing import Dict, Optional

import typer
from spacy.cli._util import parse_config_overrides
from spacy.cli.train import train as spacy_train
from spacy.util import load_config
from wasabi import msg

from conll_ner.commands import CPU_TRAINING, GPU_CHECK, GPU_INSTALL
from conll_ner.runs import spacy_lang, training_path
from conll_ner.training.budget import plan_training
from conll_ner.training.checkpoints import UnsafeCheckpoint, check_checkpoint, check_no_trusted_remote_code
from conll_ner.training.encoders import pipeline_transformer
from conll_ner.training.guard import EarlyStop, TrainingHealthError
from conll_ner.training.schedules import learn_rate_for_encoder


def stop_unless_gpu(gpu_id: int) -> None:
    if gpu_id < 0:
        return
    from thinc.api import prefer_gpu

    if not prefer_gpu(gpu_id):
        msg.fail(
            f"No GPU {gpu_id} available (no CUDA device, or no cupy for its CUDA: {GPU_INSTALL}, then {GPU_CHECK}).",
            f"To train on the CPU instead, run: {CPU_TRAINING}",
            exits=1,
        )


def check_grad_scaler(config) -> None:
    """spaCy issue #13512: an integer init_scale makes thinc's scale tensor
    int64 and mixed-precision training crash at the first update."""
    scaler = config["components"].get("transformer", {}).get("model", {}).get("grad_scaler_config", {})
    init_scale = scaler.get("init_scale")
    if init_scale is not None and not isinstance(init_scale, float):
        msg.fail(
            f"grad_scaler_config.init_scale = {init_scale!r} must be a float (write {float(init_scale)!r}): "
            "an integer crashes mixed-precision training (spaCy issue #13512).",
            exits=1,
        )


def check_local_transformer(path: Path) -> None:
    """spacy-transformers 1.4 stores the slow tokenizer's vocabulary file with
    the pipeline and crashes deep in initialization when a checkpoint has only
    tokenizer.json; say so up front."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if hasattr(tokenizer, "vocab_file") and not (tokenizer.vocab_file and Path(tokenizer.vocab_file).is_file()):
        names = ", ".join(tokenizer.vocab_files_names.values())
        msg.fail(
            f"{path} has no tokenizer vocabulary file ({names}), which spacy-transformers needs "
            "besides tokenizer.json: save the checkpoint with its original tokenizer files.",
            exits=1,
        )


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
) -> None:
    """The run's length is `epochs` passes over the training corpus, turned
    into updates, evaluations and patience for this corpus (conll_ner/training/budget.py).
    A checkpoint whose configuration asks for code is refused before it loads
    (conll_ner/training/checkpoints.py).
    Any further `--section.key value` arguments override the config, as in
    `spacy train`; they are applied last, after the plan."""
    stop_unless_gpu(gpu_id)
    config = load_config(config_path)
    check_grad_scaler(config)
    overrides: Dict[str, object] = {
        "nlp.lang": spacy_lang(lang),
        "paths.train": str(training_path(corpus_dir, lang, "train")),
        "paths.dev": str(training_path(corpus_dir, lang, "dev")),
        "paths.train_log": str(output_path / "train_log.jsonl"),
    }
    if "transformer" in config["components"] and transformer:
        overrides["components.transformer.model.name"] = transformer
    for path in (overrides["paths.train"], overrides["paths.dev"]):
        if not Path(path).exists():
            msg.fail(f"{path} does not exist: run `spacy project run convert` first", exits=1)
    extra = parse_config_overrides(ctx.args)
    merged = load_config(config_path, overrides={**overrides, **extra})
    checkpoint = pipeline_transformer(merged)
    try:
        check_no_trusted_remote_code(merged, str(config_path))
        if checkpoint is not None:
            check_checkpoint(checkpoint)
    except UnsafeCheckpoint as err:
        msg.fail(str(err), exits=1)
    if checkpoint is not None and Path(checkpoint).is_dir():
        # a local checkpoint: make sure nothing is fetched from the hub
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        check_local_transformer(Path(checkpoint))
    try:
        plan = plan_training(merged, epochs, max_steps)
        rate = learn_rate_for_encoder(merged)
    except ValueError as err:
        msg.fail(f"{config_path}: {err}", exits=1)
    msg.info(plan.describe())
    overrides.update(plan.overrides())
    if rate:
        msg.info(f"Peak learning rate {rate[0]:g} for a {rate[1]} encoder ([learn_rate_by_encoder_size])")
        overrides["training.optimizer.learn_rate.initial_rate"] = rate[0]
    overrides.update(extra)
    try:
        spacy_train(config_path, output_path, use_gpu=gpu_id, overrides=overrides)
    except TrainingHealthError as err:
        msg.fail(str(err), exits=1)
    except EarlyStop as err:
        msg.good(f"{err}: the best pipeline is in {output_path / 'model-best'}")


if __name__ == "__main__":
    app = typer.Typer(add_completion=False)
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(main)
    app()

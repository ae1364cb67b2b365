"""The train step: `spacy train` for a workflow `lang`, after checks that fail
fast with a clear message instead of hours into a run. The run's length is
`epochs` passes over the training corpus, turned into updates, evaluations
and patience for this corpus (budget.py); a checkpoint whose configuration
asks for code is refused before it loads (checkpoints.py). Progress goes to
`msg` (a wasabi Printer), as spaCy's own commands report it."""

import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from spacy.cli._util import setup_gpu, show_validation_error
from spacy.training.initialize import init_nlp
from spacy.util import load_config
from wasabi import Printer

from ..commands import CPU_TRAINING, GPU_CHECK, GPU_INSTALL
from ..runs import spacy_lang, training_path
from .budget import plan_training
from .checkpoints import UnsafeCheckpoint, check_checkpoint, check_no_trusted_remote_code
from .encoders import encoder_layers, pipeline_transformer, setting_by_encoder_size
from .guard import EarlyStop
from .loop import train_resumable
from .optimizers import LAYER_DECAY_OPTIMIZER


class TrainSetupError(ValueError):
    """A run that cannot start as asked; `detail` says what to do instead."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def require_gpu(gpu_id: int) -> None:
    if gpu_id < 0:
        return
    from thinc.api import prefer_gpu

    if not prefer_gpu(gpu_id):
        raise TrainSetupError(
            f"No GPU {gpu_id} available (no CUDA device, or no cupy for its CUDA: {GPU_INSTALL}, then {GPU_CHECK}).",
            f"To train on the CPU instead, run: {CPU_TRAINING}",
        )


def check_grad_scaler(config) -> None:
    """spaCy issue #13512: an integer init_scale makes thinc's scale tensor
    int64 and mixed-precision training crash at the first update."""
    scaler = config["components"].get("transformer", {}).get("model", {}).get("grad_scaler_config", {})
    init_scale = scaler.get("init_scale")
    if init_scale is not None and not isinstance(init_scale, float):
        raise TrainSetupError(
            f"grad_scaler_config.init_scale = {init_scale!r} must be a float (write {float(init_scale)!r}): "
            "an integer crashes mixed-precision training (spaCy issue #13512)."
        )


def check_local_transformer(path: Path) -> None:
    """spacy-transformers 1.4 stores the slow tokenizer's vocabulary file with
    the pipeline and crashes deep in initialization when a checkpoint has only
    tokenizer.json; say so up front."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if hasattr(tokenizer, "vocab_file") and not (tokenizer.vocab_file and Path(tokenizer.vocab_file).is_file()):
        names = ", ".join(tokenizer.vocab_files_names.values())
        raise TrainSetupError(
            f"{path} has no tokenizer vocabulary file ({names}), which spacy-transformers needs "
            "besides tokenizer.json: save the checkpoint with its original tokenizer files."
        )


PEAK_RATE = "training.optimizer.learn_rate.initial_rate"
ENCODER_LAYERS = "training.optimizer.encoder_layers"


def optimizer_setting_by_size(
    config: Dict[str, Any],
    extra: Dict[str, Any],
    recipe: Dict[str, object],
    msg: Printer,
    name: str,
    describe: Callable[[float], str],
) -> None:
    """Put the optimizer setting `name` of the encoder's size from the table
    [<name>_by_encoder_size] into `recipe`, unless an override gives it or
    the config has no such table, and print the value with where it came
    from."""
    key, section = f"training.optimizer.{name}", f"{name}_by_encoder_size"
    by_size = setting_by_encoder_size(config, section)
    if key in extra:
        msg.info(f"{describe(extra[key])}, as overridden (--{key})")
    elif by_size:
        recipe[key] = by_size[0]
        msg.info(f"{describe(by_size[0])} for a {by_size[1]} encoder ([{section}])")
    else:  # the optimizer's own default (one) for a setting the config leaves out
        msg.info(f"{describe(config['training']['optimizer'].get(name, 1.0))}, as configured")


def encoder_recipe(config: Dict[str, Any], extra: Dict[str, Any], msg: Printer) -> Dict[str, object]:
    """The overrides that fit the config's recipe to the run's encoder, as
    one config serves encoders of every size: the peak rate by its size and,
    with the layer-decay optimizer, the decay and the NER model's rate scale
    by its size and the number of layers (6, 12 or 24). An override given
    for any of them wins. Each is printed with where it came from."""
    recipe: Dict[str, object] = {}
    rate = setting_by_encoder_size(config, "learn_rate_by_encoder_size")
    if PEAK_RATE in extra:
        msg.info(f"Peak learning rate {extra[PEAK_RATE]:g}, as overridden (--{PEAK_RATE})")
    elif rate:
        msg.info(f"Peak learning rate {rate[0]:g} for a {rate[1]} encoder ([learn_rate_by_encoder_size])")
        recipe[PEAK_RATE] = rate[0]
    if config["training"]["optimizer"].get("@optimizers") != LAYER_DECAY_OPTIMIZER:
        return recipe
    checkpoint = pipeline_transformer(config)
    if checkpoint is None:
        raise ValueError(f"{LAYER_DECAY_OPTIMIZER} decays the rate over a transformer's layers; this config has none")
    if ENCODER_LAYERS in extra:
        layers = extra[ENCODER_LAYERS]
    else:
        layers = recipe[ENCODER_LAYERS] = encoder_layers(checkpoint)
    optimizer_setting_by_size(
        config, extra, recipe, msg, "layer_decay",
        lambda decay: f"Layer-wise rate decay {decay:g} over {layers} encoder layers",
    )  # fmt: skip
    optimizer_setting_by_size(
        config, extra, recipe, msg, "head_rate_scale", lambda scale: f"NER model at {scale:g}x the peak rate"
    )
    return recipe


def train_from_config(
    config_path: Path,
    output_path: Path,
    msg: Printer,
    *,
    use_gpu: int,
    overrides: Dict[str, Any],
    save_every_seconds: float,
) -> None:
    """`spacy train` (spacy.cli.train.train) with spaCy's loop replaced by
    one that saves the run's state and goes on from it when run again
    (loop.py)."""
    output_path.mkdir(parents=True, exist_ok=True)
    msg.info(f"Saving to output directory: {output_path}")
    setup_gpu(use_gpu)
    with show_validation_error(config_path):
        config = load_config(config_path, overrides=overrides, interpolate=False)
    msg.divider("Initializing pipeline")
    with show_validation_error(config_path, hint_fill=False):
        nlp = init_nlp(config, use_gpu=use_gpu)
    msg.good("Initialized pipeline")
    msg.divider("Training pipeline")
    train_resumable(nlp, output_path, use_gpu=use_gpu, save_every_seconds=save_every_seconds)


def train_pipeline(
    config_path: Path,
    output_path: Path,
    msg: Printer,
    *,
    lang: str,
    corpus_dir: Path = Path("corpus"),
    transformer: Optional[str] = None,
    gpu_id: int = -1,
    epochs: float = 0,
    max_steps: int = 0,
    extra: Optional[Dict[str, Any]] = None,
    save_every_seconds: float = 1800,
) -> None:
    """Check, plan and train. `extra` overrides the config as `spacy train`'s
    `--section.key value` arguments do, applied last, after the plan. The
    run's state is saved every `save_every_seconds` (0: never), and the
    same command run again goes on from the last save (loop.py). Raises
    TrainSetupError before training, TrainingHealthError during it."""
    extra = extra or {}
    require_gpu(gpu_id)
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
            raise TrainSetupError(f"{path} does not exist: run `spacy project run convert` first")
    merged = load_config(config_path, overrides={**overrides, **extra})
    checkpoint = pipeline_transformer(merged)
    try:
        check_no_trusted_remote_code(merged, str(config_path))
        if checkpoint is not None:
            check_checkpoint(checkpoint)
    except UnsafeCheckpoint as err:
        raise TrainSetupError(str(err)) from err
    if checkpoint is not None and Path(checkpoint).is_dir():
        # a local checkpoint: make sure nothing is fetched from the hub
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        check_local_transformer(Path(checkpoint))
    try:
        plan = plan_training(merged, epochs, max_steps)
        msg.info(plan.describe())
        recipe = encoder_recipe(merged, extra, msg)
    except ValueError as err:
        raise TrainSetupError(f"{config_path}: {err}") from err
    overrides.update(plan.overrides())
    overrides.update(recipe)
    overrides.update(extra)
    try:
        train_from_config(
            config_path, output_path, msg, use_gpu=gpu_id, overrides=overrides, save_every_seconds=save_every_seconds
        )
    except EarlyStop as err:
        msg.good(f"{err}: the best pipeline is in {output_path / 'model-best'}")

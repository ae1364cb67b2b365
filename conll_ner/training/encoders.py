"""Names of a pipeline's encoder that never lie about the model.

The workflow names packages `<lang>_ner_<corpus>_<encoder>`. A fixed default
short name would be wrong as soon as another checkpoint is trained, so the
short name is derived from the checkpoint the pipeline was trained from
unless one is given. A local checkpoint is named by its folder, and the
model card names it portably: the training machine's path means nothing to
the card's readers.
"""

import json
import re
from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional, Tuple


class KnownEncoder(NamedTuple):
    short_name: str
    size: str
    layers: int  # num_hidden_layers of the checkpoint's config.json


# The encoders the project documents, by hub id, known here so that names,
# learning rates and layer counts need no hub access
KNOWN_ENCODERS = {
    "bert-base-multilingual-cased": KnownEncoder("mbert", "base", 12),
    "xlm-roberta-base": KnownEncoder("xlmr_base", "base", 12),
    "xlm-roberta-large": KnownEncoder("xlmr_large", "large", 24),
    "bert-large-cased": KnownEncoder("bert_large", "large", 24),
}
# The short name of a pipeline without a transformer: the project's only
# such config is configs/cnn.cfg.
NO_TRANSFORMER = "cnn"
# `name` or `owner/name`, as the Hugging Face hub spells model ids
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
SHORT_NAME = re.compile(r"[A-Za-z0-9_]+")


def is_local_checkpoint(name: str) -> bool:
    """As transformers resolves a name: an existing folder first; and a name no
    hub id can have (an absolute or `./` path) is a folder that was local to
    the machine that trained the pipeline."""
    return Path(name).expanduser().is_dir() or not HUB_ID.fullmatch(name)


def folder_name(path: str) -> str:
    return Path(path).expanduser().resolve().name


def sanitise(name: str) -> str:
    """Lower case letters, digits and underscores, as package names want them."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def encoder_name(transformer: Optional[str], encoder: str = "") -> str:
    """The short encoder name for package names and descriptions: `encoder`
    when given, else derived from `transformer` (a hub id or a local folder;
    None for a pipeline without a transformer)."""
    if encoder:
        if not SHORT_NAME.fullmatch(encoder):
            raise ValueError(f"encoder name {encoder!r}: use letters, digits and _")
        return encoder
    if transformer is None:
        return NO_TRANSFORMER
    if transformer in KNOWN_ENCODERS:
        return KNOWN_ENCODERS[transformer].short_name
    derived = sanitise(folder_name(transformer) if is_local_checkpoint(transformer) else transformer)
    if not derived:
        raise ValueError(f"cannot derive an encoder name from {transformer!r}: give one")
    return derived


def checkpoint_name(transformer: str) -> str:
    """A name for the checkpoint that holds on any machine: a hub id as it is;
    for a local folder, the hub id it was saved from (`_name_or_path` in its
    config.json, written by older transformers versions), else its folder name."""
    if not is_local_checkpoint(transformer):
        return transformer
    config_path = Path(transformer).expanduser() / "config.json"
    if config_path.is_file():
        saved = json.loads(config_path.read_text(encoding="utf8")).get("_name_or_path", "")
        if HUB_ID.fullmatch(saved):
            return saved
    return folder_name(transformer)


def pipeline_transformer(config: Dict[str, Any]) -> Optional[str]:
    """The checkpoint a pipeline's transformer was trained from, read from its
    interpolated config: the model knows what it was trained with, whatever
    the workflow's vars say now."""
    component = config["components"].get("transformer")
    return component["model"]["name"] if component else None


def checkpoint_config(name: str, needed_for: str, setting: str) -> Any:
    """The checkpoint's transformers config; an error that names the setting
    to write instead when it cannot be read."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as err:  # not on the hub or no network; a bad repo id
        raise ValueError(
            f"Cannot read the configuration of encoder {name!r} to pick {needed_for} ({err}). "
            f"Set {setting} to a number instead."
        ) from err


def encoder_size(name: str) -> str:
    """small (hidden size up to 512: MiniLM, DistilBERT-small...), base (768)
    or large (1024 and more), from the encoder's hidden size."""
    if name in KNOWN_ENCODERS:
        return KNOWN_ENCODERS[name].size
    hidden_size = checkpoint_config(name, "its learning rate", "training.optimizer.learn_rate.initial_rate").hidden_size
    return "small" if hidden_size <= 512 else "base" if hidden_size <= 768 else "large"


def encoder_layers(name: str) -> int:
    """The encoder's number of layers (num_hidden_layers), which layer-wise
    rate decay counts down from."""
    if name in KNOWN_ENCODERS:
        return KNOWN_ENCODERS[name].layers
    return int(checkpoint_config(name, "its number of layers", "training.optimizer.encoder_layers").num_hidden_layers)


def setting_by_encoder_size(config: Dict[str, Any], section: str) -> Optional[Tuple[float, str]]:
    """The value for the config's transformer in one of its tables by encoder
    size ([learn_rate_by_encoder_size], [layer_decay_by_encoder_size],
    [head_rate_scale_by_encoder_size]), and the size; None for configs
    without that table. Encoders of different sizes want different recipes
    (large ones diverge at base-model rates, small ones learn too slowly at
    them), so one transformer config serves every encoder (values and
    reasons are in configs/transformer.cfg)."""
    table = config.get(section)
    if not table:
        return None
    size = encoder_size(config["components"]["transformer"]["model"]["name"])
    return float(table[size]), size

"""Learning-rate schedules whose warmup is a share of the run, not a step count.

Fine-tuning recipes state warmup as a fraction of training (BERT, XLM-R:
~10%). With a fixed step count, shortening a run with `max_steps` leaves it
in warmup for good, which is one way runs end up stuck at a low F1.
"""
from thinc.api import warmup_linear
from typing import Any, Dict, Iterable, Optional, Tuple
from spacy.util import registry


@registry.schedules("conll_ner.warmup_linear_fraction.v1")
def create_warmup_linear_fraction(
    initial_rate: float, total_steps: int, warmup_fraction: float = 0.1
) -> Iterable[float]:
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    if total_steps <= 0:
        raise ValueError(
            f"total_steps must be positive, got {total_steps}: set training.max_steps, "
            "which the configs use as the schedule's length"
        )
    warmup_steps = max(1, int(total_steps * warmup_fraction))
    return warmup_linear(initial_rate, warmup_steps, total_steps)


# Sizes of the encoders the project documents, so that their configs resolve
# offline; other checkpoints are sized from their config.json.
KNOWN_ENCODER_SIZES = {
    "bert-base-multilingual-cased": "base",
    "xlm-roberta-base": "base",
    "bert-large-cased": "large",
    "xlm-roberta-large": "large",
}


def encoder_size(name: str) -> str:
    """small (hidden size up to 512: MiniLM, DistilBERT-small...), base (768)
    or large (1024 and more), from the encoder's hidden size."""
    if name in KNOWN_ENCODER_SIZES:
        return KNOWN_ENCODER_SIZES[name]
    from transformers import AutoConfig

    try:
        hidden_size = AutoConfig.from_pretrained(name).hidden_size
    except (OSError, ValueError) as err:  # not on the hub or no network; a bad repo id
        raise ValueError(
            f"Cannot read the size of encoder {name!r} to pick its learning rate ({err}). "
            "Set training.optimizer.learn_rate.initial_rate to a number instead."
        ) from err
    return "small" if hidden_size <= 512 else "base" if hidden_size <= 768 else "large"


def learn_rate_for_encoder(config: Dict[str, Any]) -> Optional[Tuple[float, str]]:
    """The peak rate from the config's [learn_rate_by_encoder_size] for its
    transformer, and the size; None for configs without one. Large encoders
    diverge at base-model rates and small ones learn too slowly at them, so
    one transformer config serves every encoder (values and reasons are in
    configs/transformer.cfg)."""
    rates = config.get("learn_rate_by_encoder_size")
    if not rates:
        return None
    size = encoder_size(config["components"]["transformer"]["model"]["name"])
    return float(rates[size]), size

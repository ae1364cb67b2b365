"""Learning-rate schedules whose warmup is a share of the run, not a step count.

Fine-tuning recipes state warmup as a fraction of training (BERT, XLM-R:
a tenth). With a fixed step count, shortening a run with `max_steps` leaves it
in warmup for good, which is one way runs end up stuck at a low F1.
"""

from typing import Iterable

from spacy.util import registry
from thinc.api import warmup_linear


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

"""Stop a training run that has visibly failed, and say why.

Published CoNLL runs have failed silently: an XLM-R run sat at F1 0.56 for 30
epochs with a bad schedule, a distillation run ended at F1 0.02. This logger
wraps spaCy's console logger and raises as soon as the dev F1 is still 0
after `max_zero_evals` evaluations, or a loss is NaN or infinite, naming the
likely causes, instead of burning GPU hours.
"""

import math
from typing import IO, Any, Callable, Dict, Optional, Tuple

from spacy.language import Language
from spacy.util import registry

LIKELY_CAUSES = (
    "Likely causes: a learning rate too high for this encoder (large models need "
    "~1e-5 or less), a schedule that never leaves warmup or decays to 0 too early "
    "(check training.max_steps against the schedule's total_steps), or labels that "
    "do not reach the model (check the converted data with `spacy debug data`)."
)


class TrainingHealthError(RuntimeError):
    """Raised to stop a run that cannot recover."""


@registry.loggers("conll_ner.TrainingHealthGuard.v1")
def create_training_health_guard(
    logger: Callable, max_zero_evals: int = 5, score_key: str = "ents_f"
) -> Callable[[Language, IO, IO], Tuple[Callable[[Optional[Dict[str, Any]]], None], Callable[[], None]]]:
    """`logger` is the logger to wrap (spaCy's console logger in our configs)."""

    def setup(nlp: Language, stdout: IO, stderr: IO):
        log_step, finalize = logger(nlp, stdout, stderr)
        zero_evals = 0

        def log_health(info: Optional[Dict[str, Any]]) -> None:
            nonlocal zero_evals
            log_step(info)
            if info is None:
                return
            step = info.get("step", 0)
            for name, loss in info.get("losses", {}).items():
                if not math.isfinite(loss):
                    finalize()
                    raise TrainingHealthError(f"Stopped at step {step}: the {name} loss is {loss}. {LIKELY_CAUSES}")
            if step == 0:  # spaCy evaluates once before any update
                return
            score = info.get("other_scores", {}).get(score_key)
            if score is None:
                return
            zero_evals = zero_evals + 1 if score == 0 else 0
            if zero_evals >= max_zero_evals:
                finalize()
                raise TrainingHealthError(
                    f"Stopped at step {step}: dev {score_key} has been 0 for {zero_evals} "
                    f"evaluations in a row. {LIKELY_CAUSES} Raise "
                    "training.logger.max_zero_evals to give the run more time."
                )

        return log_health, finalize

    return setup

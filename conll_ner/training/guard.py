"""Stop a training run that has visibly failed, and say why.

Published CoNLL runs have failed silently: an XLM-R run sat near F1 zero for
30 epochs with a bad schedule, and a distillation run ended near zero. This logger
wraps spaCy's console logger and raises as soon as the dev F1 is still 0
after `max_zero_evals` evaluations, or a loss is NaN or infinite, naming the
likely causes, instead of burning GPU hours.

It also holds the run's patience, in place of spaCy's `training.patience`:
spaCy evaluates once after the first update (step 0) and counts patience
from the earliest best score, so an untrained pipeline's score at step 0
(often its best while the learning rate is still warming up) ended runs at
half their length with nothing learned. Here patience counts from the best
evaluation after step 0, and the run then stops with `EarlyStop`, which the
train step reports as a normal end.
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


class EarlyStop(Exception):
    """Raised to end a run whose dev score stopped improving: spaCy saves
    model-last on its way out, and model-best is already saved."""


@registry.loggers("conll_ner.TrainingHealthGuard.v1")
def create_training_health_guard(
    logger: Callable, max_zero_evals: int = 5, score_key: str = "ents_f", patience: int = 0
) -> Callable[[Language, IO, IO], Tuple[Callable[[Optional[Dict[str, Any]]], None], Callable[[], None]]]:
    """`logger` is the logger to wrap (spaCy's console logger in our configs).
    `patience`: updates without a better dev score (spaCy's main score) than
    the best one after step 0, before the run stops; 0: never. Set
    `training.patience` to 0 beside it, or spaCy's own count from step 0
    still applies."""

    def setup(nlp: Language, stdout: IO, stderr: IO):
        log_step, finalize = logger(nlp, stdout, stderr)
        zero_evals = 0
        best: Optional[Tuple[float, int]] = None  # (score, step) after step 0

        def log_health(info: Optional[Dict[str, Any]]) -> None:
            nonlocal zero_evals, best
            log_step(info)
            if info is None:
                return
            step = info.get("step", 0)
            for name, loss in info.get("losses", {}).items():
                if not math.isfinite(loss):
                    finalize()
                    raise TrainingHealthError(f"Stopped at step {step}: the {name} loss is {loss}. {LIKELY_CAUSES}")
            if step == 0:  # spaCy's evaluation after the first update
                return
            score = info.get("other_scores", {}).get(score_key)
            if score is not None:
                zero_evals = zero_evals + 1 if score == 0 else 0
                if zero_evals >= max_zero_evals:
                    finalize()
                    raise TrainingHealthError(
                        f"Stopped at step {step}: dev {score_key} has been 0 for {zero_evals} "
                        f"evaluations in a row. {LIKELY_CAUSES} Raise "
                        "training.logger.max_zero_evals to give the run more time."
                    )
            main_score = info.get("score")
            if main_score is not None and (best is None or main_score > best[0]):
                best = (main_score, step)
            if patience and best is not None and step - best[1] >= patience:
                finalize()
                raise EarlyStop(
                    f"Stopped at step {step}: no better dev score than step {best[1]}'s ({best[0]:.4f}) "
                    f"in {step - best[1]:,} updates (training.logger.patience {patience:,})"
                )

        return log_health, finalize

    return setup

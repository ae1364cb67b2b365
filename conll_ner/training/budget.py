"""Training budgets in epochs, turned into updates for the corpus at hand.

spaCy counts a run in updates (`training.max_steps`), and the learning-rate
schedule, the evaluation frequency and patience are all step counts. A fixed
step count means something different on every corpus and batch size: the
same 20000 updates are ~150 epochs of CoNLL-2003 at one batch size and ~10 at
another. Published fine-tuning recipes state the budget in epochs, so the
configs do too (`[budget]`), and the train step computes the step counts
from the training corpus by running the config's own batcher over it, which
also follows batch sizes that grow during training (the CNN's compounding
batches continue across epochs).

`spacy train` on its own ignores `[budget]` and uses the step counts written
in the config, which are this plan for CoNLL-2003 English.
"""

import math
import random
from dataclasses import dataclass
from typing import Any, Dict

import spacy
from spacy.util import registry
from thinc.api import Config

# the patience setting of conll_ner.TrainingHealthGuard.v1, which counts from
# the first evaluation after step 0
GUARD_PATIENCE = "training.logger.patience"


@dataclass
class TrainingPlan:
    corpus_docs: int
    corpus_words: int
    epochs: float
    updates_per_epoch: int
    words_per_update: float
    updates: int
    warmup_updates: int
    evaluations: int
    eval_frequency: int
    patience: int
    capped_at: int  # the max_steps cap that shortened the run, or 0
    schedule_length_key: str  # the learning-rate schedule's length setting, or ""
    patience_key: str = "training.patience"  # GUARD_PATIENCE where the config's logger is the guard

    def overrides(self) -> Dict[str, Any]:
        """Config overrides that make spaCy run this plan, its learning-rate
        schedule ending on the last update."""
        overrides: Dict[str, Any] = {
            "budget.epochs": self.epochs,  # the saved config says how long the run was asked to be
            "training.max_steps": self.updates,
            "training.eval_frequency": self.eval_frequency,
        }
        if self.patience_key == GUARD_PATIENCE:
            # patience counts from the first evaluation after step 0
            # (conll_ner/training/guard.py), not from spaCy's step-0 evaluation
            overrides["training.patience"] = 0
        overrides[self.patience_key] = self.patience
        if self.schedule_length_key:
            overrides[self.schedule_length_key] = self.updates
        return overrides

    def describe(self) -> str:
        capped = f" (capped by max_steps {self.capped_at})" if self.capped_at else ""
        return (
            f"Training plan: {self.corpus_words:,} words in {self.corpus_docs:,} docs, "
            f"~{self.words_per_update:.0f} words per update ({self.updates_per_epoch:,} updates per epoch); "
            f"{self.epochs:g} epochs = {self.updates:,} updates{capped}, "
            f"{self.warmup_updates:,} of them warmup; "
            f"{self.evaluations} evaluations, every {self.eval_frequency:,} updates; "
            f"patience {self.patience:,} updates"
        )


def budget_settings(config: Config) -> Dict[str, Any]:
    budget = config.get("budget")
    if not budget or "epochs" not in budget:
        raise ValueError(
            "The config has no [budget] section with `epochs`: add one (see configs/cnn.cfg), "
            "or train it with `spacy train`, which uses training.max_steps as it is."
        )
    return dict(budget)


def count_updates(batcher, examples: list, epochs: float, seed: int) -> int:
    """Updates of `epochs` passes over `examples`, with spaCy's shuffling and
    the same batcher object for every pass, as spaCy's training loop does."""
    shuffle = random.Random(seed).shuffle
    updates = 0
    remaining = epochs
    while remaining > 0:
        shuffle(examples)
        batches = sum(1 for _ in batcher(examples))
        updates += batches if remaining >= 1 else math.ceil(batches * remaining)
        remaining -= 1
    return updates


def plan_training(config: Config, epochs: float = 0, max_steps: int = 0) -> TrainingPlan:
    """The plan for `config` (overrides applied, `paths.train` set): `epochs`
    0 means the config's own `[budget] epochs`; `max_steps` > 0 caps the run,
    and the schedule shrinks with it so that a capped run still decays."""
    budget = budget_settings(config)
    epochs = epochs or float(budget["epochs"])
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    config = config.interpolate()
    nlp = spacy.blank(config["nlp"]["lang"])
    resolved = registry.resolve({"corpus": config["corpora"]["train"], "batcher": config["training"]["batcher"]})
    examples = list(resolved["corpus"](nlp))
    if not examples:
        raise ValueError(f"The training corpus {config['paths']['train']} holds no documents")
    words = sum(len(eg) for eg in examples)
    seed = config["training"]["seed"] or 0
    one_epoch = count_updates(resolved["batcher"], examples, 1, seed)
    batcher = registry.resolve({"batcher": config["training"]["batcher"]})["batcher"]  # fresh size schedule
    wanted = count_updates(batcher, examples, epochs, seed)
    capped_at = max_steps if 0 < max_steps < wanted else 0
    updates = capped_at or wanted
    evaluations = max(1, min(int(budget.get("evaluations", 4)), updates))
    # spaCy evaluates when step % eval_frequency == 0: a whole number of
    # evaluation intervals puts the last evaluation on the last update (and
    # rounding down keeps the run within the cap)
    eval_frequency = updates // evaluations
    updates = eval_frequency * evaluations
    learn_rate = config["training"]["optimizer"].get("learn_rate")
    schedule = learn_rate if isinstance(learn_rate, dict) else {}
    warmup_fraction = schedule.get("warmup_fraction", 0.0)
    patience_share = float(budget.get("patience_share", 0.0))
    return TrainingPlan(
        corpus_docs=len(examples),
        corpus_words=words,
        epochs=epochs,
        updates_per_epoch=one_epoch,
        words_per_update=words * epochs / wanted,
        updates=updates,
        warmup_updates=int(updates * warmup_fraction),
        evaluations=evaluations,
        eval_frequency=eval_frequency,
        patience=math.ceil(updates * patience_share),
        capped_at=capped_at,
        schedule_length_key="training.optimizer.learn_rate.total_steps" if "total_steps" in schedule else "",
        patience_key=GUARD_PATIENCE if logs_through_guard(config) else "training.patience",
    )


def logs_through_guard(config: Config) -> bool:
    """The config's training logger is conll_ner.TrainingHealthGuard.v1,
    which holds the patience."""
    return (config["training"].get("logger") or {}).get("@loggers") == "conll_ner.TrainingHealthGuard.v1"

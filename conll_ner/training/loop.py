"""spaCy's training loop, able to go on from where a run stopped.

This is spacy.training.loop's `train` and `train_while_improving` (the
spaCy that requirements.txt pins) with two additions they lack: every
`save_every_seconds` the run's state is saved (resume.py), and a run
started again with the same config restores it and goes on from that
update instead of step 0. The rest is
spaCy's: the same updates, evaluations, checkpoints (model-best when an
evaluation is the best so far, model-last on every evaluation and at the
end) and loggers, so a run never stopped trains as `spacy train` does
(tested). spaCy's loop has no hook for this: its epoch order, update count
and optimizer live inside a generator that starts at step 0.
"""

import json
import random
import shutil
import signal
import sys
import threading
from contextlib import nullcontext
from pathlib import Path
from timeit import default_timer as timer
from types import FrameType
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Tuple

from spacy.errors import Errors
from spacy.language import Language
from spacy.schemas import ConfigSchemaTraining
from spacy.training import Example
from spacy.training.loop import (
    DIR_MODEL_BEST,
    DIR_MODEL_LAST,
    clean_output_dir,
    create_before_to_disk_callback,
    create_evaluation_callback,
    subdivide_batch,
    update_meta,
)
from spacy.util import registry, resolve_dot_names
from thinc.api import constant, fix_random_seed, set_gpu_allocator
from wasabi import Printer

from .guard import EarlyStop, TrainingHealthError
from .resume import (
    RESUME_FOLDER,
    TrainingPosition,
    load_state,
    restore_random_states,
    save_state,
    saved_config,
)


class RunStopped(KeyboardInterrupt):
    """A run stopped by a signal once its state was saved: a re-run goes on."""


class StopRequests:
    """Ctrl+C (SIGINT) and SIGTERM (a scheduler taking a machine back) as a
    request to stop once the current update is done, after saving the run's
    state; a second signal stops at once, as without this. Signal handlers
    can only be set from the main thread: elsewhere nothing is set."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: Optional[str] = None
        self.previous: Dict[int, Any] = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            self.previous = {number: signal.signal(number, self.receive) for number in self.SIGNALS}
        return self

    def receive(self, number: int, frame: Optional[FrameType]) -> None:
        self.received = signal.Signals(number).name
        signal.signal(number, self.previous[number])

    def __exit__(self, *exc: Any) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


class EpochBatches:
    """spaCy's create_train_batches over a corpus held in memory (every
    config of this project: max_epochs >= 0), which also says where it is:
    the epoch, its order of the examples (shuffled in place each epoch, as
    spaCy shuffles its list) and how many of its batches it gave."""

    def __init__(
        self, nlp: Language, corpus: Callable, batcher: Callable, max_epochs: int, position: TrainingPosition
    ) -> None:
        self.nlp = nlp
        self.corpus = corpus
        self.examples: Optional[List[Example]] = None
        self.batcher = batcher
        self.max_epochs = max_epochs
        self.epoch = position.epoch
        self.order = list(position.epoch_order)
        self.used = position.epoch_batches
        self.shuffled = bool(position.epoch_order)  # a resumed epoch keeps its saved order

    def read(self) -> List[Example]:
        """The corpus, read once: when the first batch is asked for, as in
        spaCy, or before a resumed run restores its random states."""
        if self.examples is None:
            self.examples = list(self.corpus(self.nlp))
            if not self.examples:
                raise ValueError(Errors.E986)
            if self.order and len(self.order) != len(self.examples):
                raise ValueError(
                    f"the saved run's training corpus held {len(self.order):,} Docs and it now holds "
                    f"{len(self.examples):,}: remove the run's {RESUME_FOLDER} folder to start afresh"
                )
            self.order = self.order or list(range(len(self.examples)))
        return self.examples

    def __iter__(self) -> Iterator[Tuple[int, List[Example]]]:
        examples = self.read()
        while self.max_epochs < 1 or self.epoch != self.max_epochs:
            if not self.shuffled:
                random.shuffle(self.order)
                self.used = 0
            skip, self.shuffled = self.used, False
            for number, batch in enumerate(self.batcher([examples[i] for i in self.order])):
                if number < skip:
                    continue
                self.used = number + 1
                yield self.epoch, batch
            self.epoch += 1


def train_resumable(
    nlp: Language,
    output_path: Path,
    *,
    use_gpu: int = -1,
    save_every_seconds: float = 1800,
    stdout: IO = sys.stdout,
    stderr: IO = sys.stderr,
) -> None:
    """spacy.training.loop.train for the initialized `nlp`, with the run's
    state saved to output_path/resume every `save_every_seconds` (0: never,
    and signals are left alone) and restored from there when it holds a run
    of the same config. SIGINT or SIGTERM saves the state after the current
    update and raises RunStopped. The state is removed once the run ends,
    normally or by the health guard."""
    msg = Printer(no_print=True)
    config = nlp.config.interpolate()
    if config["training"]["seed"] is not None:
        fix_random_seed(config["training"]["seed"])
    allocator = config["training"]["gpu_allocator"]
    if use_gpu >= 0 and allocator:
        set_gpu_allocator(allocator)
    T = registry.resolve(config["training"], schema=ConfigSchemaTraining)
    train_corpus, dev_corpus = resolve_dot_names(config, [T["train_corpus"], T["dev_corpus"]])
    optimizer = T["optimizer"]
    before_to_disk = create_before_to_disk_callback(T["before_to_disk"])
    frozen_components = T["frozen_components"]
    if T["max_epochs"] < 0:
        raise ValueError("training.max_epochs = -1 streams the corpus, which a run cannot resume in: set it to 0")
    state_folder = output_path / RESUME_FOLDER
    saved = saved_config(output_path)
    resuming = saved is not None and saved == nlp.config.to_str()
    if saved is not None and not resuming:
        stdout.write(msg.warn(f"{state_folder} holds a run of another config: starting afresh") + "\n")
        shutil.rmtree(state_folder)
    position = load_state(output_path, nlp, optimizer) if resuming else TrainingPosition()
    batches = EpochBatches(nlp, train_corpus, T["batcher"], T["max_epochs"], position)
    if resuming:
        batches.read()  # what reading the corpus draws was drawn before the state was saved
        restore_random_states(position.random_states)
        stdout.write(msg.info(f"Resuming at update {position.updates:,}, from {state_folder}") + "\n")
    else:
        clean_output_dir(output_path)

    def save_checkpoint(is_best: bool) -> None:
        with nlp.use_params(optimizer.averages):
            before_to_disk(nlp).to_disk(output_path / DIR_MODEL_LAST)
        if is_best:
            if (output_path / DIR_MODEL_BEST).exists():
                shutil.rmtree(output_path / DIR_MODEL_BEST)
            shutil.copytree(output_path / DIR_MODEL_LAST, output_path / DIR_MODEL_BEST)

    stdout.write(msg.info(f"Pipeline: {nlp.pipe_names}") + "\n")
    if frozen_components:
        stdout.write(msg.info(f"Frozen components: {frozen_components}") + "\n")
    if T["annotating_components"]:
        stdout.write(msg.info(f"Set annotations on update for: {T['annotating_components']}") + "\n")
    stdout.write(msg.info(f"Initial learn rate: {optimizer.learn_rate}") + "\n")
    with nlp.select_pipes(disable=frozen_components):
        log_step, finalize_logger = T["logger"](nlp, stdout, stderr)
    for number, info in enumerate(position.evaluations):  # the loggers see the run as one
        log_step({**info, "checkpoints": [(ev["score"], ev["step"]) for ev in position.evaluations[: number + 1]]})
    steps = training_steps(
        nlp, optimizer, batches, create_evaluation_callback(nlp, dev_corpus, T["score_weights"]), T, position
    )
    last_save = timer()
    stops = StopRequests()
    try:
        with stops if save_every_seconds else nullcontext(stops):
            for info, is_best_checkpoint in steps:
                if is_best_checkpoint is not None:
                    with nlp.select_pipes(disable=frozen_components):
                        update_meta(T, nlp, info)
                    save_checkpoint(is_best_checkpoint)
                    info["output_path"] = str(output_path / DIR_MODEL_LAST)
                log_step(info if is_best_checkpoint is not None else None)
                if save_every_seconds and (stops.received or timer() - last_save >= save_every_seconds):
                    save_state(output_path, nlp, optimizer, position_after(info, batches, position.evaluations))
                    last_save = timer()
                if stops.received:
                    raise RunStopped(
                        f"{stops.received} after update {info['step'] + 1:,}: the run's state is saved in "
                        f"{state_folder}; run the same command again to go on"
                    )
    except (EarlyStop, TrainingHealthError):
        shutil.rmtree(state_folder, ignore_errors=True)
        raise
    except Exception as err:
        stdout.write(msg.warn(f"Aborting and saving the final best model. Encountered exception: {err!r}") + "\n")
        raise
    finally:
        finalize_logger()
        save_checkpoint(False)
    shutil.rmtree(state_folder, ignore_errors=True)
    stdout.write(msg.good("Saved pipeline to output directory", output_path / DIR_MODEL_LAST) + "\n")


def position_after(info: Dict[str, Any], batches: EpochBatches, evaluations: List[Dict[str, Any]]) -> TrainingPosition:
    """The position once the step `info` describes is done: after an
    evaluation, the next step's losses start from nothing."""
    return TrainingPosition(
        updates=info["step"] + 1,
        epoch=batches.epoch,
        epoch_order=list(batches.order),
        epoch_batches=batches.used,
        seconds=info["seconds"],
        words=info["words"],
        evaluations=evaluations,
        losses={} if info["score"] is not None else {name: float(loss) for name, loss in info["losses"].items()},
    )


def training_steps(
    nlp: Language,
    optimizer: Any,
    batches: EpochBatches,
    evaluate: Callable[[], Tuple[float, Dict[str, Any]]],
    T: Dict[str, Any],
    position: TrainingPosition,
) -> Iterator[Tuple[Dict[str, Any], Optional[bool]]]:
    """spaCy's train_while_improving, from the update `position` holds on:
    the evaluations so far count for the best checkpoint and for spaCy's
    patience, the dropout schedule and the clock go on from there.
    Each evaluation's info (without the checkpoints) is appended to
    `position.evaluations`."""
    dropout = T["dropout"]
    dropouts = constant(dropout) if isinstance(dropout, float) else dropout
    for _ in range(position.updates):
        next(dropouts)
    exclude, patience, max_steps = T["frozen_components"], T["patience"], T["max_steps"]
    results = [(ev["score"], ev["step"]) for ev in position.evaluations]
    losses: Dict[str, float] = dict(position.losses)
    words_seen = position.words
    start_time = timer() - position.seconds
    for step, (epoch, batch) in enumerate(batches, start=position.updates):
        if T["before_update"]:
            T["before_update"](nlp, {"step": step, "epoch": epoch})
        drop = next(dropouts)
        for subbatch in subdivide_batch(batch, T["accumulate_gradient"]):
            nlp.update(
                subbatch, drop=drop, losses=losses, sgd=False, exclude=exclude, annotates=T["annotating_components"]
            )  # fmt: skip
        for name, proc in nlp.pipeline:
            if (
                name not in exclude
                and hasattr(proc, "is_trainable")
                and proc.is_trainable
                and proc.model not in (True, False, None)
            ):
                proc.finish_update(optimizer)
        optimizer.step_schedules()
        if not (step % T["eval_frequency"]):
            if optimizer.averages:
                with nlp.use_params(optimizer.averages):
                    score, other_scores = evaluate()
            else:
                score, other_scores = evaluate()
            results.append((score, step))
            is_best_checkpoint: Optional[bool] = score == max(results)[0]
        else:
            score, other_scores = (None, None)
            is_best_checkpoint = None
        words_seen += sum(len(eg) for eg in batch)
        info = {
            "epoch": epoch,
            "step": step,
            "score": score,
            "other_scores": other_scores,
            "losses": losses,
            "checkpoints": results,
            "seconds": int(timer() - start_time),
            "words": words_seen,
        }
        if is_best_checkpoint is not None:  # as JSON will give it back
            record = {key: value for key, value in info.items() if key != "checkpoints"}
            position.evaluations.append(json.loads(json.dumps(record, default=float)))
        yield info, is_best_checkpoint
        if is_best_checkpoint is not None:
            losses = {}
        best_result = max((r_score, -r_step) for r_score, r_step in results)
        if patience and (step - -best_result[1]) >= patience:
            break
        if max_steps and step >= max_steps:
            break

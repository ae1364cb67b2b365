"""Evaluate a pipeline on CoNLL DocBins and write what users and external
scorers read: metrics.json, metrics.md and predictions.conll."""

import itertools
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from ..data.readers import create_gold_tokens_corpus
from ..files import write_atomically, write_json
from ..pipeline.prediction_runtime import prediction_runtime
from .scoring import ERROR_KINDS, predicted_iob2, score_entities


def predict_on_gold_tokens(nlp: Language, data_path: Union[str, Path], batch_size: int = 64) -> List[Example]:
    examples = list(create_gold_tokens_corpus(data_path)(nlp))
    docs = nlp.pipe((eg.predicted for eg in examples), batch_size=batch_size)
    for example, doc in zip(examples, docs):
        example.predicted = doc
    return examples


def median_seconds(
    run: Callable[[], object], repeats: int = 3, clock: Callable[[], float] = time.perf_counter
) -> float:
    """The median time of `repeats` calls of `run`: a shared machine slows
    single passes, and one disturbed pass must not decide a speed ratio. Every
    speed the project reports is timed this way."""
    passes = []
    for _ in range(repeats):
        start = clock()
        run()
        passes.append(clock() - start)
    return statistics.median(passes)


def words_per_second(
    nlp: Language,
    sentences: Sequence[Sequence[str]],
    batch_size: Optional[int] = None,
    repeats: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Words per second of the pipeline on Docs made from words (tokenization
    is not timed), in its own batch size unless given: the median of
    `repeats` passes (median_seconds). One batch runs first, untimed: lazy
    initialisation and thread pools are not part of the speed."""

    def docs() -> Iterator[Doc]:
        return (Doc(nlp.vocab, words=list(words)) for words in sentences)

    def one_pass() -> None:
        for _ in nlp.pipe(docs(), batch_size=batch_size):
            pass

    batch_size = batch_size or nlp.batch_size
    for _ in nlp.pipe(itertools.islice(docs(), batch_size), batch_size=batch_size):
        pass
    seconds = median_seconds(one_pass, repeats, clock)
    return sum(len(words) for words in sentences) / seconds if seconds else 0.0


def token_accuracy(examples: Iterable[Example]) -> float:
    """Share of tokens whose IOB2 tag is right, as seqeval's accuracy_score."""
    right = total = 0
    for example in examples:
        gold, predicted = predicted_iob2(example)
        right += sum(g == p for g, p in zip(gold, predicted))
        total += len(gold)
    return right / total if total else 0.0


def evaluate_docbin(
    nlp: Language, data_path: Union[str, Path], per_sentence: bool = False
) -> Tuple[Dict[str, Any], List[Example]]:
    start = time.perf_counter()
    examples = predict_on_gold_tokens(nlp, data_path)
    seconds = time.perf_counter() - start
    n_tokens = sum(len(eg.reference) for eg in examples)
    metrics: Dict[str, Any] = score_entities(examples)
    metrics.update(
        {
            "ents_token_acc": token_accuracy(examples),
            "speed": n_tokens / seconds if seconds else 0.0,
            "n_docs": len(examples),
            "n_sents": sum(1 for eg in examples for _ in eg.reference.sents),
            "n_tokens": n_tokens,
            "data": str(data_path),
            # int8, bfloat16 and fp32 give other scores: every score says which it is
            "runtime": prediction_runtime(nlp),
        }
    )
    if per_sentence:
        metrics["per_sentence"] = score_entities(examples, per_sentence=True)
    return metrics, examples


def predictions_conll(examples: Iterable[Example]) -> str:
    """`token gold predicted` in IOB2, a blank line after each sentence."""
    lines: List[str] = []
    for example in examples:
        gold, predicted = predicted_iob2(example, per_sentence=True)
        for token in example.reference:
            if token.is_sent_start and token.i > 0:
                lines.append("")
            lines.append(f"{token.text} {gold[token.i]} {predicted[token.i]}")
        lines.append("")
    return "\n".join(lines) + "\n"


def scores_table(scores: Dict[str, Any]) -> List[str]:
    lines = ["| Type | P | R | F1 | Support |", "|---|---:|---:|---:|---:|"]
    support_total = 0
    for label, values in scores["ents_per_type"].items():
        support = scores["ents_counts"][label]["support"]
        support_total += support
        lines.append(
            f"| {label} | {values['p'] * 100:.2f} | {values['r'] * 100:.2f} | {values['f'] * 100:.2f} | {support} |"
        )
    lines.append(
        f"| **overall (micro)** | **{scores['ents_p'] * 100:.2f}** | **{scores['ents_r'] * 100:.2f}** "
        f"| **{scores['ents_f'] * 100:.2f}** | **{support_total}** |"
    )
    return lines


def errors_table(scores: Dict[str, Any]) -> List[str]:
    labels = sorted(scores["ents_per_type"])
    lines = ["| Error | " + " | ".join(labels) + " | Total |", "|---|" + "---:|" * (len(labels) + 1)]
    for kind in ERROR_KINDS:
        counts = scores["ents_errors"][kind]
        cells = [str(counts.get(label, 0)) for label in labels]
        lines.append(f"| {kind.replace('_', ' ')} | " + " | ".join(cells) + f" | {sum(counts.values())} |")
    return lines


def metrics_markdown(metrics: Dict[str, Any], title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"Data: `{metrics['data']}`: {metrics['n_docs']} docs, "
        f"{metrics['n_sents']} sentences, {metrics['n_tokens']} tokens. "
        "Entity-level scores as conlleval/seqeval compute them, on the gold tokens. "
        f"Predicted on the {runtime_words(metrics['runtime'])}.",
        "",
    ]
    lines += ["## Whole documents", ""] + scores_table(metrics) + [""]
    if "per_sentence" in metrics:
        lines += (
            ["## Per sentence", "", "Entities cut at sentence boundaries, as conlleval reads `predictions.conll`.", ""]
            + scores_table(metrics["per_sentence"])
            + [""]
        )
    lines += (
        [
            "## Errors",
            "",
            "Type: right span, wrong type. Boundary: overlaps a gold entity of the "
            "same type. Missed/spurious: overlaps nothing. Counted by gold type (spurious: "
            "predicted type).",
            "",
        ]
        + errors_table(metrics)
        + [""]
    )
    projection = metrics["ents_projection"]
    lines += [
        f"Projection onto gold tokens: {projection['misaligned']} misaligned predictions widened, "
        f"{projection['overlapping']} overlapping predictions counted as false positives, "
        f"{projection['unprojectable']} unprojectable.",
        "",
    ]
    lines += [
        f"Token accuracy (IOB2 tags): {metrics['ents_token_acc'] * 100:.2f}. Speed: {metrics['speed']:.0f} tokens/s.",
        "",
    ]
    return "\n".join(lines)


SUMMARY_KEYS = ("ents_p", "ents_r", "ents_f", "ents_token_acc", "n_tokens", "ents_per_type", "runtime")


def score_summary(metrics: Dict[str, Any]) -> Dict[str, Any]:
    """What metrics.json and the model card keep of one evaluation."""
    return {key: metrics[key] for key in SUMMARY_KEYS}


def runtime_words(runtime: Dict[str, str]) -> str:
    """`prediction_runtime`'s answer in words: "CPU in int8"."""
    return f"{runtime['device'].upper()} in {runtime['precision']}"


def write_evaluation(
    output_dir: Union[str, Path], metrics: Dict[str, Any], examples: List[Example], title: str
) -> None:
    output_dir = Path(output_dir)
    write_json(output_dir / "metrics.json", metrics)
    write_atomically(output_dir / "metrics.md", metrics_markdown(metrics, title).encode("utf8"))
    write_atomically(output_dir / "predictions.conll", predictions_conll(examples).encode("utf8"))

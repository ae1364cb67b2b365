"""Entity scores that equal conlleval's and seqeval's (default mode).

spaCy's own `ents_f` differs from the CoNLL number in three ways: a predicted
entity whose tokens do not align with the gold tokens is dropped without a
trace, documents without NER annotation are skipped, and the scores are None
instead of 0 when there are no entities. This scorer counts on the gold
tokens, as conlleval does, and never loses a prediction:

* A predicted entity is projected onto the gold tokens by its characters; if
  its edges fall inside gold tokens it is widened to whole tokens
  (`projection.misaligned` counts these) and scored like any other span, so it
  is a true positive only if the widened span equals a gold entity.
* If two projected predictions then overlap, the first (by start) is kept as
  the token's tag and every other one is counted as a false positive of its
  type (`projection.overlapping`): it cannot be correct, and dropping it would
  inflate precision.
* With `per_sentence`, entities are cut at the gold sentence boundaries, which
  is what conlleval sees when sentences are separated by blank lines.

It keeps spaCy's keys (`ents_p`, `ents_r`, `ents_f`, `ents_per_type`) so the
training log, `spacy evaluate` and every other spaCy tool read it unchanged.

This module imports nothing from the rest of the project, so that it can be
shipped inside packaged pipelines with `spacy package --code`.
"""

from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Set, Tuple

from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

Span = Tuple[int, int, str]  # start token, end token (exclusive), label
ERROR_KINDS = ("type", "boundary", "boundary_and_type", "missed", "spurious")


def gold_token_spans(example: Example) -> Tuple[List[Span], List[Span], Counter]:
    """Gold and predicted entities as token spans on the gold tokens, and
    counts of what the projection had to do (`unprojectable:LABEL` for
    predictions that cover no gold token at all)."""
    reference: Doc = example.reference
    gold = [(ent.start, ent.end, ent.label_) for ent in reference.ents]
    predicted_doc: Doc = example.predicted
    if [t.idx for t in predicted_doc] == [t.idx for t in reference]:
        return gold, [(ent.start, ent.end, ent.label_) for ent in predicted_doc.ents], Counter()
    projection: Counter = Counter()
    predicted: List[Span] = []
    for ent in predicted_doc.ents:
        span = reference.char_span(ent.start_char, ent.end_char)
        if span is None:
            projection["misaligned"] += 1
            span = reference.char_span(ent.start_char, ent.end_char, alignment_mode="expand")
        if span is None or len(span) == 0:
            projection[f"unprojectable:{ent.label_}"] += 1
        else:
            predicted.append((span.start, span.end, ent.label_))
    return gold, predicted, projection


def sentence_starts(doc: Doc) -> Set[int]:
    return {token.i for token in doc if token.is_sent_start and token.i > 0}


def split_at_sentences(spans: Iterable[Span], sent_starts: Set[int]) -> List[Span]:
    pieces: List[Span] = []
    for start, end, label in spans:
        cut = start
        for i in range(start + 1, end):
            if i in sent_starts:
                pieces.append((cut, i, label))
                cut = i
        pieces.append((cut, end, label))
    return pieces


def resolve_overlaps(spans: List[Span]) -> Tuple[List[Span], List[Span]]:
    """(kept, overlapping): keep the first span by start, as a tag sequence can hold only one."""
    kept: List[Span] = []
    overlapping: List[Span] = []
    last_end = None
    for span in sorted(spans):
        if last_end is not None and span[0] < last_end:
            overlapping.append(span)
        else:
            kept.append(span)
            last_end = span[1]
    return kept, overlapping


def classify_errors(gold: List[Span], predicted: List[Span]) -> Dict[str, Counter]:
    """Per error kind, counts by entity type (the gold type, or the predicted
    type for spurious entities)."""
    errors: Dict[str, Counter] = {kind: Counter() for kind in ERROR_KINDS}
    gold_set, pred_set = set(gold), set(predicted)

    def overlaps(a: Span, b: Span) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    for g in gold:
        if g in pred_set:
            continue
        touching = [p for p in predicted if overlaps(g, p)]
        if not touching:
            errors["missed"][g[2]] += 1
        elif any(p[:2] == g[:2] for p in touching):
            errors["type"][g[2]] += 1
        elif any(p[2] == g[2] for p in touching):
            errors["boundary"][g[2]] += 1
        else:
            errors["boundary_and_type"][g[2]] += 1
    for p in predicted:
        if p not in gold_set and not any(overlaps(p, g) for g in gold):
            errors["spurious"][p[2]] += 1
    return errors


def prf(tp: int, fp: int, fn: int) -> Dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"p": precision, "r": recall, "f": f}


def score_entities(examples: Iterable[Example], per_sentence: bool = False, **kwargs: Any) -> Dict[str, Any]:
    """Micro and per-type precision, recall and F1 on the gold tokens."""
    tp: Counter = Counter()
    fp: Counter = Counter()
    fn: Counter = Counter()
    errors: Dict[str, Counter] = {kind: Counter() for kind in ERROR_KINDS}
    projection: Counter = Counter()
    for example in examples:
        gold, predicted, counts = gold_token_spans(example)
        projection.update(counts)
        for key, count in counts.items():
            if key.startswith("unprojectable:"):
                label = key.split(":", 1)[1]
                fp[label] += count
                errors["spurious"][label] += count
                projection["unprojectable"] += count
        if per_sentence:
            starts = sentence_starts(example.reference)
            before = len(predicted)
            gold = split_at_sentences(gold, starts)
            predicted = split_at_sentences(predicted, starts)
            projection["split_at_sentence"] += len(predicted) - before
        predicted, overlapping = resolve_overlaps(predicted)
        projection["overlapping"] += len(overlapping)
        gold_set = set(gold)
        for span in predicted:
            (tp if span in gold_set else fp)[span[2]] += 1
        for span in overlapping:
            fp[span[2]] += 1
        predicted_set = set(predicted)
        for span in gold:
            if span not in predicted_set:
                fn[span[2]] += 1
        for kind, counter in classify_errors(gold, predicted + overlapping).items():
            errors[kind].update(counter)
    labels = sorted(set(tp) | set(fp) | set(fn))
    total = prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    per_type = {}
    for label in labels:
        per_type[label] = prf(tp[label], fp[label], fn[label])
    return {
        "ents_p": total["p"],
        "ents_r": total["r"],
        "ents_f": total["f"],
        "ents_per_type": per_type,
        "ents_counts": {
            label: {"tp": tp[label], "fp": fp[label], "fn": fn[label], "support": tp[label] + fn[label]}
            for label in labels
        },
        "ents_errors": {kind: dict(sorted(errors[kind].items())) for kind in ERROR_KINDS},
        "ents_projection": {
            key: projection[key] for key in ("misaligned", "unprojectable", "overlapping", "split_at_sentence")
        },
    }


def predicted_iob2(example: Example, per_sentence: bool = True) -> Tuple[List[str], List[str]]:
    """IOB2 tags of gold and prediction on the gold tokens, as scored above
    (overlapping projected predictions keep the first one)."""
    gold, predicted, _ = gold_token_spans(example)
    if per_sentence:
        predicted = split_at_sentences(predicted, sentence_starts(example.reference))
    predicted, _ = resolve_overlaps(predicted)
    length = len(example.reference)
    return spans_to_tags(gold, length), spans_to_tags(predicted, length)


def spans_to_tags(spans: Iterable[Span], length: int) -> List[str]:
    tags = ["O"] * length
    for start, end, label in spans:
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
    return tags


@registry.scorers("conll_ner.seqeval_scorer.v1")
def make_seqeval_scorer(per_sentence: bool = False) -> Callable[..., Dict[str, Any]]:
    def score(examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        return score_entities(examples, per_sentence=per_sentence)

    return score

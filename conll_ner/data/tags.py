"""Turn IOB1/IOB2 tag sequences into entity spans the way conlleval reads them.

conlleval (and seqeval in its default mode) starts a new entity at every
`B-X`, and at every `I-X` that does not continue an entity of type X. Reading
tags this way makes IOB1 and IOB2 the same problem, and makes our entity counts
the official ones.
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

Span = Tuple[int, int, str]  # start token, end token (exclusive), label


@dataclass
class SpanReading:
    spans: List[Span]
    b_starts: int  # entities opened by a B- tag
    i_starts: int  # entities opened by an I- tag (IOB1 style, or an IOB2 repair)


def iob_to_spans(tags: Sequence[str]) -> SpanReading:
    spans: List[Span] = []
    b_starts = i_starts = 0
    start = -1
    label = ""
    for i, tag in enumerate(tags):
        prefix, _, tag_label = tag.partition("-")
        continues = prefix == "I" and start >= 0 and tag_label == label
        if continues:
            continue
        if start >= 0:
            spans.append((start, i, label))
            start = -1
        if prefix == "O":
            continue
        start, label = i, tag_label
        if prefix == "B":
            b_starts += 1
        else:
            i_starts += 1
    if start >= 0:
        spans.append((start, len(tags), label))
    return SpanReading(spans, b_starts, i_starts)


def count_labels(spans: Sequence[Span]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for _, _, label in spans:
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))

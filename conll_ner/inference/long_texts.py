"""Cutting texts too long to annotate in one piece.

A 972,000-character text as one Doc needs memory in proportion to its length
in every component (a transformer reads it as hundreds of windows at once)
and is refused by spaCy beyond `nlp.max_length`. Cut at paragraph or sentence
boundaries, each piece keeps the context an NER model looks at, so the
entities barely change; their offsets in a piece plus the piece's start are
their offsets in the whole text.
"""

import re
from typing import List, Pattern, Tuple

# boundaries from the best to the last resort; a cut falls after the match,
# so whitespace ends a piece and the next piece starts on a word
PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")
SENTENCE = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019\u00bb)\]]*\s+")
WHITESPACE = re.compile(r"\s+")


def last_cut(pattern: Pattern[str], window: str, earliest: int) -> int:
    """The end of the last match in `window` at or after `earliest`, else 0."""
    cut = 0
    for match in pattern.finditer(window):
        if match.end() >= earliest:
            cut = match.end()
    return cut


def split_text(text: str, max_chars: int) -> List[Tuple[int, int]]:
    """(start, end) of consecutive pieces of at most `max_chars` characters
    that cover `text`. Each cut is the last paragraph boundary in the second
    half of the piece, else the last sentence end there, else the last
    whitespace, else (a run of max_chars characters without a space) the
    piece's limit."""
    pieces: List[Tuple[int, int]] = []
    start = 0
    while len(text) - start > max_chars:
        window = text[start : start + max_chars]
        cut = (
            last_cut(PARAGRAPH, window, max_chars // 2)
            or last_cut(SENTENCE, window, max_chars // 2)
            or last_cut(WHITESPACE, window, 1)
            or max_chars
        )
        pieces.append((start, start + cut))
        start += cut
    pieces.append((start, len(text)))
    return pieces

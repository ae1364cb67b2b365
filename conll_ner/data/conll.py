"""Read CoNLL-2002/2003 NER files exactly as they are distributed.

The releases differ in encoding, column count and document markers, and each
has quirks (see the README of `../shared/data`). This reader accepts all of
them and rejects anything else with an error that names the file and line,
because a silently misread row shifts every tag after it.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple, Union

DOCSTART = "-DOCSTART-"
TAG_PREFIXES = ("B", "I")


class ConllFormatError(ValueError):
    """A CoNLL file that cannot be read; the message names file and line."""

    def __init__(self, path: Union[str, Path], line: Optional[int], message: str):
        self.path = str(path)
        self.line = line
        location = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{location}: {message}")


@dataclass
class Sentence:
    """One sentence: its words, its NER tags as written in the file, and
    whether a `-DOCSTART-` marker came right before it."""

    words: List[str]
    tags: List[str]
    doc_start: bool = False
    line: int = 0  # 1-based line of the first token, for messages
    source: str = ""


@dataclass
class ConllFile:
    """What the reader found out about a file, next to its sentences."""

    path: str
    encoding: str
    columns: int
    documents: int  # number of -DOCSTART- markers (0: the file marks none)
    sentences: List[Sentence] = field(default_factory=list)


def decode_conll_bytes(data: bytes, path: Union[str, Path]) -> Tuple[str, str]:
    """Decode as UTF-8, else as latin-1 (the CoNLL-2002 encoding).

    A UTF-8 byte-order mark (which editors on Windows write) is dropped, as
    any reader of UTF-8 text drops it; kept, it would start the first word.

    Every byte string decodes as latin-1, so a file is only taken for latin-1
    when it holds no NUL bytes and no C1 control characters (0x80-0x9F), which
    real latin-1 text never contains; anything else (Windows-1252 quotes,
    UTF-16, binary data) is reported with the first offending line.
    """
    if not data.strip():
        raise ConllFormatError(path, None, "the file is empty")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    for line_no, raw_line in enumerate(data.split(b"\n"), start=1):
        bad = [b for b in raw_line if b == 0 or 0x80 <= b <= 0x9F]
        if bad:
            raise ConllFormatError(
                path,
                line_no,
                f"undecodable byte 0x{bad[0]:02x}: the file is neither UTF-8 nor latin-1 (re-encode it as UTF-8)",
            )
    return data.decode("latin-1"), "latin-1"


def check_tag(tag: str, path: Union[str, Path], line: int) -> None:
    if tag == "O":
        return
    prefix, sep, label = tag.partition("-")
    if not sep or prefix not in TAG_PREFIXES or not label:
        raise ConllFormatError(
            path,
            line,
            f"unknown NER tag {tag!r}: expected 'O', 'B-TYPE' or 'I-TYPE' in the last column",
        )


def parse_conll_lines(lines: Iterable[str], path: Union[str, Path] = "<input>") -> Tuple[List[Sentence], int, int]:
    """Split lines into sentences; return (sentences, columns, documents).

    The NER tag is the last column in every release (English: word POS chunk
    NER; Dutch: word POS NER; Spanish: word NER). The first token row fixes the
    column count for the file. A `-DOCSTART-` row ends the current sentence
    whether or not a blank line follows it (the Dutch files have none), and
    its own columns are not checked: the English test file writes it as
    `-DOCSTART- -X- -X- O` but train/dev as `-DOCSTART- -X- O O`.
    """
    sentences: List[Sentence] = []
    columns = 0
    documents = 0
    words: List[str] = []
    tags: List[str] = []
    first_line = 0
    pending_doc_start = False

    def close_sentence() -> None:
        nonlocal words, tags, pending_doc_start
        if words:
            sentences.append(Sentence(words, tags, pending_doc_start, first_line, str(path)))
            pending_doc_start = False
        words, tags = [], []

    for line_no, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            close_sentence()
            continue
        if fields[0] == DOCSTART:
            close_sentence()
            documents += 1
            pending_doc_start = True
            continue
        if columns == 0:
            if len(fields) < 2:
                raise ConllFormatError(
                    path, line_no, f"expected at least 2 columns (word ... tag), found {len(fields)}"
                )
            columns = len(fields)
        elif len(fields) != columns:
            raise ConllFormatError(
                path,
                line_no,
                f"expected {columns} columns like the rows above, found {len(fields)}: {line.rstrip()!r}",
            )
        check_tag(fields[-1], path, line_no)
        if not words:
            first_line = line_no
        words.append(fields[0])
        tags.append(fields[-1])
    close_sentence()
    if not sentences:
        raise ConllFormatError(path, None, "the file holds no token rows")
    return sentences, columns, documents


def read_conll_file(path: Union[str, Path]) -> ConllFile:
    path = Path(path)
    if not path.is_file():
        raise ConllFormatError(path, None, "no such file")
    text, encoding = decode_conll_bytes(path.read_bytes(), path)
    sentences, columns, documents = parse_conll_lines(text.splitlines(), path)
    return ConllFile(str(path), encoding, columns, documents, sentences)


def iter_documents(sentences: List[Sentence]) -> Iterator[List[Sentence]]:
    """Group sentences by `-DOCSTART-` markers; a file without markers is one document."""
    document: List[Sentence] = []
    for sentence in sentences:
        if sentence.doc_start and document:
            yield document
            document = []
        document.append(sentence)
    if document:
        yield document

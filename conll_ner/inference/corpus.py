"""The input of an annotation run: shards (one per input file) and the
documents in them, read as a stream.

A broken document never stops a shard: an undecodable line, broken JSON or a
missing text becomes a record that carries the error, named by file and
line, and ends up as an error row in the output. Only a shard that cannot be
read at all (a corrupt parquet file, a missing text column) fails, and it
alone.

This is the project's one reader of unlabelled text: `annotate` and the
teacher of `distill-data` both read through it. Inputs are JSONL, plain text
and parquet. A DocBin (.spacy) is not one: DocBin.from_disk inflates the
whole file at once, so it cannot be streamed, and records carry text, so its
tokens and entities would be dropped anyway. A labelled corpus used as text
(the distill benchmark's unlabelled part) is written as JSONL of its texts.
"""

import glob
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple, Union

from .settings import AnnotateError, Settings

JSONL_SUFFIXES = (".jsonl", ".ndjson")
TEXT_SUFFIXES = (".txt", ".text")
PARQUET_SUFFIXES = (".parquet",)
INPUT_SUFFIXES = JSONL_SUFFIXES + TEXT_SUFFIXES + PARQUET_SUFFIXES
# records per parquet read; the rows of one row group are never all in memory
PARQUET_BATCH_ROWS = 1024
# JSON can escape half of a UTF-16 pair, which no UTF-8 output can hold
SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Shard:
    """One input file, and the name of its output below the output folder."""

    index: int
    path: Path
    # the input's path below the input folder (or glob), in default ids
    source: str
    output: str


@dataclass
class Record:
    """A document to annotate, or (with `error`) one that cannot be."""

    shard: int
    line: int
    id: Any
    text: Optional[str]
    error: Optional[str] = None


@dataclass
class ShardEnd:
    """Follows a shard's last record; `error` says why the rest of the shard
    could not be read, and then the shard is not written."""

    shard: int
    error: Optional[str] = None


def input_files(inputs: Union[str, Path]) -> Tuple[List[Path], Path]:
    """The input files of a file, a folder (searched recursively) or a glob,
    sorted, and the folder that their output names are relative to."""
    spec = str(inputs)
    if not spec.strip():
        raise AnnotateError("no input given: name a file, a folder or a glob of the documents to annotate")
    path = Path(spec)
    if path.is_file():
        if path.suffix == ".spacy":
            raise AnnotateError(
                f"{path}: a DocBin is not read as text (it cannot be streamed, and its tokens and entities "
                'would be dropped anyway): write its texts as JSONL, one {"text": doc.text} per line'
            )
        if path.suffix not in INPUT_SUFFIXES:
            raise AnnotateError(f"{path}: unknown input format; use {', '.join(INPUT_SUFFIXES)}")
        return [path.resolve()], path.resolve().parent
    if path.is_dir():
        candidates = [p for p in path.rglob("*") if p.is_file()]
        base = path
    elif glob.has_magic(spec):
        candidates = [Path(p) for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
        parts = Path(spec).parts
        fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
        base = Path(*parts[:fixed]) if fixed else Path(".")
    else:
        raise AnnotateError(
            f"{spec} does not exist: give a file, a folder or a glob of {', '.join(INPUT_SUFFIXES)} files"
        )
    files = sorted(p.resolve() for p in candidates if p.suffix in INPUT_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise AnnotateError(f"{spec} holds no {', '.join(INPUT_SUFFIXES)} files")
    return files, base.resolve()


def find_shards(inputs: Union[str, Path], output_format: str, output_dir: Union[str, Path]) -> List[Shard]:
    """One shard per input file, named after the file's path below the
    input folder with the output format's suffix. Files inside the output
    folder are never inputs, so the output may live inside the input folder."""
    output_dir = Path(output_dir).resolve()
    files, base = input_files(inputs)
    shards: List[Shard] = []
    by_output: Dict[str, Path] = {}
    for path in files:
        if path.is_relative_to(output_dir):
            continue
        source = path.relative_to(base).as_posix()
        output = path.relative_to(base).with_suffix(f".{output_format}").as_posix()
        if output in by_output:
            raise AnnotateError(f"{by_output[output]} and {path} would both be written to {output}: rename one of them")
        by_output[output] = path
        shards.append(Shard(len(shards), path, source, output))
    if not shards:
        raise AnnotateError(f"{inputs} holds no input files outside the output folder {output_dir}")
    return shards


def read_lines(file: BinaryIO, max_bytes: int) -> Iterator[Tuple[int, Optional[bytes]]]:
    """(line number, line) of a binary file; None for a line over max_bytes,
    which is skipped without ever being held in memory whole."""
    number = 0
    while True:
        line = file.readline(max_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) > max_bytes:
            while line and not line.endswith(b"\n"):
                line = file.readline(max_bytes)
            yield number, None
        else:
            yield number, line


def text_record(shard: Shard, number: int, line: bytes, settings: Settings) -> Optional[Record]:
    """A record of one line of a plain text (one document per line) or JSONL
    file; None for a blank JSONL line, which holds no document."""
    record = Record(shard.index, number, f"{shard.source}:{number}", None)
    try:
        decoded = line.decode("utf8")
    except UnicodeDecodeError as err:
        record.error = f"{shard.path}:{number}: not UTF-8 ({err.reason} at byte {err.start})"
        return record
    if number == 1:
        decoded = decoded.lstrip("\ufeff")
    if shard.path.suffix in TEXT_SUFFIXES:
        record.text = decoded.rstrip("\r\n")
        return record
    if not decoded.strip():
        return None
    try:
        value = json.loads(decoded)
    except json.JSONDecodeError as err:
        record.error = f"{shard.path}:{number}: broken JSON ({err})"
        return record
    if not isinstance(value, dict) or not isinstance(value.get(settings.text_field), str):
        record.error = f"{shard.path}:{number}: no {settings.text_field!r} string field"
    elif SURROGATE.search(value[settings.text_field]):
        record.error = f"{shard.path}:{number}: the text holds an unpaired surrogate escape, which is not Unicode text"
    else:
        record.text = value[settings.text_field]
    if isinstance(value, dict) and value.get(settings.id_field) is not None:
        record.id = value[settings.id_field]
    return record


def parquet_records(shard: Shard, settings: Settings) -> Iterator[Record]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(shard.path)
    columns = parquet.schema_arrow.names
    if settings.text_field not in columns:
        raise AnnotateError(f"no {settings.text_field!r} column (its columns: {', '.join(columns)})")
    wanted = [settings.text_field] + ([settings.id_field] if settings.id_field in columns else [])
    number = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
        for row in batch.to_pylist():
            number += 1
            record = Record(shard.index, number, row.get(settings.id_field), row[settings.text_field])
            if record.id is None:
                record.id = f"{shard.source}:{number}"
            if not isinstance(record.text, str):
                record.text, record.error = None, f"{shard.path}:{number}: no {settings.text_field!r} string"
            yield record


def read_records(shard: Shard, settings: Settings) -> Iterator[Record]:
    """Every document of a shard, in order; a document that cannot be read
    is a record with its error. Lines over the hard limit are not read."""
    if shard.path.suffix in PARQUET_SUFFIXES:
        yield from parquet_records(shard, settings)
        return
    with shard.path.open("rb") as file:
        for number, line in read_lines(file, settings.max_line_bytes):
            if line is None:
                yield Record(
                    shard.index,
                    number,
                    f"{shard.source}:{number}",
                    None,
                    f"{shard.path}:{number}: line of over {settings.max_line_bytes} bytes, not read",
                )
                continue
            record = text_record(shard, number, line, settings)
            if record is not None:
                yield record


def read_chunks(shard: Shard, settings: Settings) -> Iterator[Union[List[Record], ShardEnd]]:
    """A shard's records in chunks of `settings.chunk_docs`, then its end,
    which says why reading stopped early if it did."""
    chunk: List[Record] = []
    try:
        for record in read_records(shard, settings):
            chunk.append(record)
            if len(chunk) == settings.chunk_docs:
                yield chunk
                chunk = []
    except (OSError, ValueError) as err:  # pyarrow's errors are OSError and ValueError
        yield ShardEnd(shard.index, f"{shard.path}: {err}")
        return
    if chunk:
        yield chunk
    yield ShardEnd(shard.index)

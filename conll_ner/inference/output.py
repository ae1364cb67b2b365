"""Writing one output shard, row by row, in JSONL or parquet.

Each row is a document's id, its entities (start_char, end_char, label,
text) and its error (null unless it could not be annotated). Rows are
streamed to disk, so a shard of any size needs little memory.
"""

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Protocol

from .annotator import Row

# rows per parquet row group
PARQUET_GROUP_ROWS = 10_000


class RowWriter(Protocol):
    def write(self, row: Row) -> None: ...


class JsonlWriter:
    def __init__(self, file) -> None:
        self.file = file

    def write(self, row: Row) -> None:
        self.file.write(json.dumps(row.to_dict(), ensure_ascii=False, default=str) + "\n")


class ParquetWriter:
    """Rows in row groups; ids are strings (a JSON id other than a string is
    written as its JSON), as a parquet column holds one type."""

    def __init__(self, writer) -> None:
        self.writer = writer
        self.rows: List[Dict[str, Any]] = []

    @staticmethod
    def schema():
        import pyarrow as pa

        entity = pa.struct(
            [("start_char", pa.int64()), ("end_char", pa.int64()), ("label", pa.string()), ("text", pa.string())]
        )
        return pa.schema([("id", pa.string()), ("entities", pa.list_(entity)), ("error", pa.string())])

    def write(self, row: Row) -> None:
        record = row.to_dict()
        if not isinstance(record["id"], str):
            record["id"] = json.dumps(record["id"], default=str)
        self.rows.append(record)
        if len(self.rows) == PARQUET_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema()))
        self.rows = []


@contextmanager
def open_writer(path: Path, output_format: str) -> Iterator[RowWriter]:
    """A writer of rows to `path` in the format; the file is complete when
    the block ends."""
    if output_format == "jsonl":
        # an unpaired surrogate (from a JSON escape) is written as its JSON escape
        with path.open("w", encoding="utf8", errors="backslashreplace") as file:
            yield JsonlWriter(file)
        return
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, ParquetWriter.schema()) as parquet:
        writer = ParquetWriter(parquet)
        yield writer
        if writer.rows:
            writer.flush()

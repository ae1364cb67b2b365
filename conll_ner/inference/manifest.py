"""What an output folder holds, so that a rerun resumes it safely.

`manifest.json`, written before the first shard, names the pipeline (name,
version, fingerprint), the input and the settings that shape the output; a
run with anything else is refused, so annotations of two models are never
mixed in one folder. `shards.jsonl` gets one line per finished shard,
appended after its output is renamed into place: the input's size and
modification time, the output's size and the shard's counts. A shard is
done when its line is there, its input is unchanged and its output has the
recorded size; anything else (no output, a partial one, an input edited
since) is annotated again.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from ..files import append_line, read_json_lines, write_json
from .annotator import ModelIdentity
from .corpus import Shard
from .settings import AnnotateError, ForeignOutputError

MANIFEST_FILE = "manifest.json"
DONE_FILE = "shards.jsonl"
MANIFEST_VERSION = 1


@dataclass
class ShardRecord:
    output: str
    input: str
    input_bytes: int
    input_mtime_ns: int
    output_bytes: int
    documents: int
    failed: int
    words: int


def manifest_for(
    identity: ModelIdentity, inputs: str, output_format: str, settings: Dict[str, object]
) -> Dict[str, object]:
    return {
        "version": MANIFEST_VERSION,
        "model": asdict(identity),
        "input": inputs,
        "format": output_format,
        "settings": settings,
    }


def differences(old: Dict[str, object], new: Dict[str, object], prefix: str = "") -> List[str]:
    """`key: old -> new` for every value that differs, nested keys dotted."""
    found = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            found.extend(differences(before, after, f"{prefix}{key}."))
        elif before != after:
            found.append(f"{prefix}{key}: {before!r} -> {after!r}")
    return found


class OutputFolder:
    """An output folder and the shards finished in it."""

    def __init__(self, path: Path, done: Dict[str, ShardRecord]) -> None:
        self.path = path
        self.done = done

    @classmethod
    def open(cls, path: Path, manifest: Dict[str, object], resume: bool) -> "OutputFolder":
        """Resume the folder (resume=True), refusing one written with another
        model, input or settings; or (resume=False) remove what an earlier
        run wrote there and start afresh. A folder that holds files but no
        manifest was not written by this code and is never touched."""
        manifest_path = path / MANIFEST_FILE
        if path.exists() and not manifest_path.is_file() and any(path.iterdir()):
            raise AnnotateError(
                f"{path} holds files but no {MANIFEST_FILE}, so annotate did not write it: "
                "give a new or empty output folder"
            )
        if manifest_path.is_file():
            old = json.loads(manifest_path.read_text(encoding="utf8"))
            changed = differences(old, manifest)
            if resume and changed:
                raise ForeignOutputError(path, changed)
            if resume:
                return cls(path, read_done(path / DONE_FILE))
            for record in read_done(path / DONE_FILE).values():
                (path / record.output).unlink(missing_ok=True)
            (path / DONE_FILE).unlink(missing_ok=True)
        write_json(manifest_path, manifest)
        return cls(path, {})

    def is_done(self, shard: Shard) -> bool:
        record = self.done.get(shard.output)
        if record is None or (record.input, record.input_bytes, record.input_mtime_ns) != input_state(shard):
            return False
        output = self.path / shard.output
        return output.is_file() and output.stat().st_size == record.output_bytes

    def split(self, shards: Iterable[Shard]) -> Tuple[List[Shard], List[Shard]]:
        """(shards to annotate, shards done before)."""
        pending, done = [], []
        for shard in shards:
            (done if self.is_done(shard) else pending).append(shard)
        return pending, done

    def record(self, shard: Shard, documents: int, failed: int, words: int) -> ShardRecord:
        """Log a shard whose output has just been renamed into place."""
        record = ShardRecord(
            shard.output, *input_state(shard), (self.path / shard.output).stat().st_size, documents, failed, words
        )
        append_line(self.path / DONE_FILE, json.dumps(asdict(record)).encode("utf8"))
        self.done[shard.output] = record
        return record


def input_state(shard: Shard) -> Tuple[str, int, int]:
    stat = shard.path.stat()
    return shard.source, stat.st_size, stat.st_mtime_ns


def read_done(path: Path) -> Dict[str, ShardRecord]:
    """The last record of each shard; a line cut short by a crash is ignored,
    and its shard annotated again."""
    done: Dict[str, ShardRecord] = {}
    for line in read_json_lines(path):
        try:
            record = ShardRecord(**line)
        except TypeError:
            continue
        done[record.output] = record
    return done

"""Writing outputs so that a failed or interrupted step leaves nothing half-written."""

import glob
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Union

TEMPORARY_SUFFIX = ".tmp"


@contextmanager
def atomic_path(path: Union[str, Path]) -> Iterator[Path]:
    """A temporary path beside `path` to write to, renamed to `path` when the
    block ends and removed if it raises: an output too large to hold in
    memory is streamed to disk and still never seen half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(path: Union[str, Path]) -> Iterator[Path]:
    """A new folder beside `path` to fill, swapped in for `path` when the
    block ends and removed if it raises: a failed build leaves the old
    folder as it was, and the old one is only moved aside, never deleted,
    until the new one is in its place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-staging-", dir=path.parent))
    try:
        yield staging
        if path.exists():
            old = path.with_name(f".{path.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(staging, path)
            shutil.rmtree(old)
        else:
            os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_leftover_temporaries(path: Union[str, Path]) -> None:
    """Remove what `atomic_path` left beside `path` in a process that was
    killed before it could clean up."""
    path = Path(path)
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*{TEMPORARY_SUFFIX}"):
        leftover.unlink(missing_ok=True)


def write_atomically(path: Union[str, Path], data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: a failed or
    interrupted step never leaves a half-written output behind."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Union[str, Path], data: Any, *, ensure_ascii: bool = True) -> None:
    """`data` as indented JSON with a final newline, written atomically: the
    one way the project writes a JSON file, so that a reader never meets a
    half-written one and every file looks alike."""
    write_atomically(path, (json.dumps(data, indent=2, ensure_ascii=ensure_ascii) + "\n").encode("utf8"))


def append_line(path: Union[str, Path], line: bytes) -> None:
    """Append one line to a log and flush it to disk before returning, so
    that what the line records survives a crash right after. A line cut
    short by an earlier crash gets its newline first, so it cannot swallow
    this one."""
    with Path(path).open("a+b") as file:
        size = file.seek(0, os.SEEK_END)
        if size:
            file.seek(size - 1)
            if file.read(1) != b"\n":
                file.write(b"\n")
        file.write(line.rstrip(b"\n") + b"\n")
        file.flush()
        os.fsync(file.fileno())


def read_json_lines(path: Union[str, Path]) -> Iterator[Dict[str, Any]]:
    """The JSON objects of a log written with `append_line`; a missing log
    holds none, and a line cut short by a crash is skipped."""
    path = Path(path)
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf8").splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value

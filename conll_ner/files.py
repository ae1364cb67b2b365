"""Writing outputs so that a failed or interrupted step leaves nothing half-written."""
import os
import tempfile
from pathlib import Path
from typing import Union


def write_atomically(path: Union[str, Path], data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: a failed or
    interrupted step never leaves a half-written output behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file_:
            file_.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

import os
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """The original CoNLL files: $CONLL_DATA_DIR, else ../shared/data beside the project."""
    return Path(os.environ.get("CONLL_DATA_DIR", PROJECT_DIR.parent / "shared" / "data"))


@pytest.fixture
def shared_file():
    def get(relative: str) -> Path:
        path = shared_data_dir() / relative
        if not path.is_file():
            pytest.skip(f"{path} is absent: put the CoNLL files in ../shared/data or set CONLL_DATA_DIR")
        return path

    return get


@pytest.fixture
def write_file(tmp_path):
    def write(name: str, content, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        data = content if isinstance(content, bytes) else content.encode(encoding)
        path.write_bytes(data)
        return path

    return write

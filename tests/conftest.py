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


@pytest.fixture(scope="session", autouse=True)
def int8_graph_cache(tmp_path_factory):
    """Transformer pipelines predict in int8 on the CPU by default and cache
    their graphs: the tests' graphs go to a folder of the session, not to the
    user's cache (subprocesses inherit the variable)."""
    previous = os.environ.get("CONLL_NER_CACHE")
    os.environ["CONLL_NER_CACHE"] = str(tmp_path_factory.mktemp("conll_ner_cache"))
    yield
    if previous is None:
        os.environ.pop("CONLL_NER_CACHE", None)
    else:
        os.environ["CONLL_NER_CACHE"] = previous

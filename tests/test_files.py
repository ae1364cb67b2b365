"""conll_ner.files: outputs are never seen half-written."""

from pathlib import Path

import pytest

from conll_ner.files import atomic_folder


def hidden(folder: Path):
    return [path.name for path in folder.iterdir() if path.name.startswith(".")]


def test_atomic_folder_swaps_the_new_folder_in(tmp_path: Path):
    output = tmp_path / "model"
    with atomic_folder(output) as staging:
        (staging / "weights").write_text("first")
        assert not output.exists()  # nothing is seen before the block ends
    assert (output / "weights").read_text() == "first"
    with atomic_folder(output) as staging:
        (staging / "weights").write_text("second")
        assert (output / "weights").read_text() == "first"
    assert sorted(path.name for path in output.iterdir()) == ["weights"]
    assert (output / "weights").read_text() == "second"
    assert hidden(tmp_path) == []


def test_atomic_folder_leaves_the_old_folder_when_the_block_raises(tmp_path: Path):
    output = tmp_path / "model"
    output.mkdir()
    (output / "weights").write_text("old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_folder(output) as staging:
            (staging / "weights").write_text("half")
            raise RuntimeError("killed")
    assert (output / "weights").read_text() == "old"
    assert hidden(tmp_path) == []
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_folder(tmp_path / "new") as staging:
            raise RuntimeError("killed")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]

"""conll_ner.files: outputs are never seen half-written."""

from pathlib import Path

import pytest

from conll_ner.files import atomic_folder, write_json


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


def test_write_json_writes_indented_json_with_a_final_newline(tmp_path: Path):
    output = tmp_path / "new" / "metrics.json"
    write_json(output, {"ents_f": 0.5, "city": "Sebastián"})
    assert output.read_text(encoding="utf8") == '{\n  "ents_f": 0.5,\n  "city": "Sebasti\\u00e1n"\n}\n'
    write_json(output, {"city": "Sebastián"}, ensure_ascii=False)
    assert output.read_text(encoding="utf8") == '{\n  "city": "Sebastián"\n}\n'
    assert hidden(output.parent) == []


def test_write_json_leaves_the_old_file_when_writing_fails(tmp_path: Path, monkeypatch):
    output = tmp_path / "metrics.json"
    write_json(output, {"ents_f": 0.5})
    # data that cannot be written
    with pytest.raises(TypeError):
        write_json(output, {"ents_f": object()})
    assert output.read_text() == '{\n  "ents_f": 0.5\n}\n'

    # a write that dies half-way (a full disk, a kill)
    def half_then_fail(path: Path, data: bytes) -> None:
        path.open("wb").write(data[:5])
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        write_json(output, {"ents_f": 0.75})
    assert output.read_text() == '{\n  "ents_f": 0.5\n}\n'
    assert hidden(tmp_path) == []

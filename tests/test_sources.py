"""The data step's choice per split: the local file when present, else the
hub copy; offline, a message that says how to provide the data. The hub is
faked with in-memory datasets."""

import os

import pytest
from fixtures import DUTCH
from hub_fixtures import ROWS, make_dataset

from conll_ner.data import hub
from conll_ner.data.conll import read_conll_file
from conll_ner.data.sources import SPLIT_FILES, MissingDataError, gather_splits

DATASET_IDS = {"conll2003": "eriktks/conll2003", "conll2002": "eriktks/conll2002"}


def write_local_files(data_dir, skip=()):
    for relative in SPLIT_FILES:
        if relative not in skip:
            path = data_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(DUTCH.encode("latin-1"))


def fake_hub(monkeypatch, load):
    calls = []

    def load_hub_split(dataset_id, config_name, split, revision):
        calls.append((dataset_id, config_name, split, revision))
        return load()

    monkeypatch.setattr(hub, "load_hub_split", load_hub_split)
    return calls


def test_present_files_are_used_as_they_are_and_not_fetched(tmp_path, monkeypatch):
    data_dir = tmp_path / "assets"
    write_local_files(data_dir)
    source = data_dir / "conll2002" / "ned.train"
    os.utime(source, (0, 0))
    calls = fake_hub(monkeypatch, lambda: pytest.fail("the hub was asked for a file that is present"))
    lines = list(gather_splits(data_dir, tmp_path / "out", DATASET_IDS, ""))
    assert calls == []
    assert lines[6] == f"conll2002/ned.train: local file {source} -> {tmp_path / 'out' / 'conll2002' / 'ned.train'}"
    for relative in SPLIT_FILES:
        assert (tmp_path / "out" / relative).read_bytes() == DUTCH.encode("latin-1")
    assert source.read_bytes() == DUTCH.encode("latin-1") and source.stat().st_mtime == 0


def test_a_missing_split_is_fetched_from_the_hub_and_written(tmp_path, monkeypatch):
    data_dir = tmp_path / "assets"
    write_local_files(data_dir, skip={"conll2002/esp.testb"})
    calls = fake_hub(monkeypatch, lambda: make_dataset(ROWS))
    output_dir = tmp_path / "out"
    lines = list(gather_splits(data_dir, output_dir, DATASET_IDS, "refs/convert/parquet"))
    assert calls == [("eriktks/conll2002", "es", "test", "refs/convert/parquet")]
    output = output_dir / "conll2002" / "esp.testb"
    assert lines[5] == (
        f"conll2002/esp.testb: not in {data_dir}, so hub dataset eriktks/conll2002, config es, "
        f"split test, revision refs/convert/parquet: 3 sentences -> {output}"
    )
    conll = read_conll_file(output)
    assert [s.words for s in conll.sentences] == [r[0] for r in ROWS if r[0] != ["-DOCSTART-"]]
    assert not (data_dir / "conll2002" / "esp.testb").exists()
    assert [p.name for p in output.parent.iterdir() if p.name.startswith(".")] == []


def test_offline_the_message_lists_the_ways_to_provide_the_data(tmp_path, monkeypatch):
    data_dir = tmp_path / "assets"
    missing = ["conll2003/eng.train", "conll2003/eng.testa", "conll2003/eng.testb", "conll2002/ned.testb"]
    write_local_files(data_dir, skip=set(missing))

    def offline():
        raise ConnectionError("Couldn't reach 'eriktks/conll2003' on the Hub (OfflineModeIsEnabled)")

    fake_hub(monkeypatch, offline)
    with pytest.raises(MissingDataError) as err:
        list(gather_splits(data_dir, tmp_path / "out", DATASET_IDS, ""))
    message = str(err.value)
    assert "hub dataset eriktks/conll2003, config (default), split train, revision (default)" in message
    assert "ConnectionError: Couldn't reach 'eriktks/conll2003' on the Hub" in message
    assert "put the original files at:" + "".join(f"\n    {data_dir / r}" for r in missing) in message
    assert (
        f"--vars.data_dir DIR, DIR being a folder that holds them under these names ({', '.join(missing)})" in message
    )
    assert "--vars.hub_conll2003, --vars.hub_conll2002 and --vars.hub_revision" in message
    assert not (tmp_path / "out" / "conll2003").exists()

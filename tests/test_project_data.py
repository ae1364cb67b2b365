import json

from project_utils import copy_project, run_project, write_fixture_assets


def test_project_data_and_convert_convert_every_split_of_every_language(tmp_path):
    project = copy_project(tmp_path / "project")
    write_fixture_assets(project)
    data = run_project(project, "data")
    assert data.returncode == 0, data.stdout + data.stderr
    said = " ".join(data.stdout.split())  # wasabi wraps long lines
    assert "conll2002/ned.testb: local file assets/conll2002/ned.testb -> corpus/conll/conll2002/ned.testb" in said
    result = run_project(project, "convert", {"n_sents": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    for split in ("train", "dev", "test"):
        for lang, entities in (("en", 6), ("es", 5), ("nl", 2)):
            assert (project / "corpus" / split / f"{lang}.spacy").stat().st_size > 0
            stats = json.loads((project / "corpus" / split / f"{lang}.stats.json").read_text())
            assert stats["entities_total"] == entities and stats["n_sents"] == 1


def test_project_data_offline_names_the_missing_files_and_the_ways_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    project = copy_project(tmp_path / "project")
    write_fixture_assets(project)
    (project / "assets" / "conll2002" / "ned.testb").unlink()
    result = run_project(project, "data")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "put the original files at:\n    assets/conll2002/ned.testb\n" in output
    assert "--vars.data_dir DIR" in output and "--vars.hub_conll2002" in output
    assert not (project / "corpus" / "conll" / "conll2002" / "ned.testb").exists()

import json

from project_utils import copy_project, run_project, write_fixture_assets


def test_project_convert_converts_every_split_of_every_language(tmp_path):
    project = copy_project(tmp_path / "project")
    write_fixture_assets(project)
    result = run_project(project, "convert", {"n_sents": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    for split in ("train", "dev", "test"):
        for lang, entities in (("en", 6), ("es", 5), ("nl", 2)):
            assert (project / "corpus" / split / f"{lang}.spacy").stat().st_size > 0
            stats = json.loads((project / "corpus" / split / f"{lang}.stats.json").read_text())
            assert stats["entities_total"] == entities and stats["n_sents"] == 1


def test_project_convert_names_a_missing_asset(tmp_path):
    project = copy_project(tmp_path / "project")
    write_fixture_assets(project)
    (project / "assets" / "conll2002" / "ned.testb").unlink()
    result = run_project(project, "convert")
    assert result.returncode != 0
    assert "ned.testb" in result.stdout + result.stderr

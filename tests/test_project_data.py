"""The data step without the files it needs (the whole workflow, data and\nconvert included, runs in tests/test_workflow.py)."""

from project_utils import copy_project, run_project, write_fixture_assets


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

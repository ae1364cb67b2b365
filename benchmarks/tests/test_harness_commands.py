"""Every command the harness suggests (its messages, docstrings, help texts
and comments, benchmarks/project.yml's help texts, its requirements file's
comments) works as written, checked as the product's documented commands
are (tests/command_check.py)."""

from command_check import check_commands, copy_for_checks, suggested_commands
from processes import PROJECT_DIR


def test_every_command_the_harness_suggests_works_as_written(tmp_path):
    suggested = suggested_commands(PROJECT_DIR, ["benchmarks"], "benchmarks")
    # the serving modes' stop names the mode that trains their pipeline
    assert any(c.text == "spacy project run benchmark benchmarks --vars.mode long_quick" for c in suggested)
    problems = check_commands(suggested, copy_for_checks(tmp_path / "project"))
    assert not problems, "\n".join(problems)

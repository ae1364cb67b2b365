"""Every command the project shows a user works as written, with the
installed versions: the README's and the docs' shell lines and the commands
the project's messages suggest (see command_check.py for how each kind is
checked). The README's generated parts are current, and it and the docs
state no figure that BENCHMARKS.md does not."""

import json
import re
from pathlib import Path

import pytest
from command_check import (
    PROJECT_DIR,
    check_commands,
    copy_for_checks,
    documented_commands,
    message_commands,
    shell_commands,
    suggested_commands,
)

from conll_ner.readme import documented_var_groups, render_readme

DOC_FILES = [PROJECT_DIR / "README.md"] + sorted((PROJECT_DIR / "docs").glob("*.md"))


def files_in(folder: Path):
    return {path.relative_to(folder) for path in folder.rglob("*") if "__pycache__" not in path.parts}


@pytest.fixture(scope="module")
def checked_copy(tmp_path_factory):
    return copy_for_checks(tmp_path_factory.mktemp("checks") / "project")


def test_every_documented_and_suggested_command_works_as_written(checked_copy):
    commands, problems = documented_commands(DOC_FILES)
    suggested = suggested_commands()
    # the README's CPU set-up and the train step's no-GPU message are among them
    assert any("--vars.transformer" in " ".join(c.tokens) and c.where.startswith("README.md") for c in commands)
    assert any(c.where.startswith("conll_ner/commands.py") for c in suggested)
    before = files_in(checked_copy)
    problems += check_commands(commands + suggested, checked_copy)
    assert not problems, "\n".join(problems)
    # --dry and --help ran nothing and wrote nothing: weasel only creates the
    # project.yml's `directories` (empty) whenever it loads the project
    import yaml

    created = files_in(checked_copy) - before
    directories = set(yaml.safe_load((checked_copy / "project.yml").read_text())["directories"])
    assert all(str(path) in directories and not any((checked_copy / path).iterdir()) for path in created), created
    assert before <= files_in(checked_copy)


def test_the_check_fails_on_broken_lines(checked_copy):
    """Planted bad lines, one per kind of check: each must be reported."""
    problems = []
    bad = [
        # the bug this check exists for: --vars right after the command's name
        shell_commands("planted:1", "spacy project run all --vars.gpu_id -1", problems),
        shell_commands("planted:2", "spacy project run no-such-command .", problems),
        shell_commands("planted:3", "spacy project run all . --vars.no_such_var 1", problems),
        shell_commands("planted:4", "python scripts/convert.py --no-such-option 1", problems),
        shell_commands("planted:5", "pip install -r requirements-none.txt", problems),
        shell_commands("planted:6", "python -c 'import spacy; print('", problems),
        shell_commands("planted:7", "make all", problems),
        message_commands("To train on the CPU, run: spacy project run all --vars.gpu_id -1", "planted:8"),
        shell_commands("planted:9", 'curl -s http://127.0.0.1:8000/entities -d \'{"texts": ["x"]}\'', problems),
        shell_commands("planted:10", 'curl -s http://127.0.0.1:8000/ents -d \'{"text": "x"}\'', problems),
        shell_commands("planted:11", "curl -s http://127.0.0.1:9000/health", problems),
    ]
    commands = [command for found in bad for command in found]
    assert not problems and len(commands) == 11
    reported = check_commands(commands, checked_copy)
    for number in range(1, 12):
        assert any(line.startswith(f"planted:{number}:") for line in reported), (number, reported)
    assert any("dir '--vars.gpu_id' does not exist" in line for line in reported if line.startswith("planted:1:"))
    # and the good forms of the same lines pass
    good = shell_commands(
        "good",
        "spacy project run all . --vars.gpu_id -1 && pip install -r requirements.txt && "
        'curl -s http://127.0.0.1:8000/ents -d \'{"texts": ["x"]}\'',
        problems,
    )
    assert len(good) == 3 and check_commands(good, checked_copy) == []


def test_shell_lines_are_read_as_a_shell_reads_them():
    problems = []
    commands = shell_commands("x", "pip install a b  # a comment && more", problems)
    assert [c.tokens for c in commands] == [["pip", "install", "a", "b"]]
    commands = shell_commands("x", "A=1 spacy project run x . && python -c 'print(1)'", problems)
    assert [c.tokens[0] for c in commands] == ["A=1", "python"]
    # a substitution is a command of its own; its output (here, of print) is the value
    commands = shell_commands(
        "x", "spacy project run all . --vars.transformer \"$(python -c 'print(1 + 1)')/model\"", problems
    )
    assert commands[0].tokens[-1] == "2/model" and commands[1].tokens == ["python", "-c", "print(1 + 1)"]
    assert not problems
    shell_commands("x", "spacy project run all . | tee log", problems)
    assert problems and "'|'" in problems[0]


def test_an_untagged_fenced_block_is_reported(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Text\n\n```\nspacy project run all --vars.gpu_id -1\n```\n")
    commands, problems = documented_commands([page])
    assert not commands and len(problems) == 1 and "without a language" in problems[0]


def test_messages_are_found_in_the_project_sources():
    """The scan sees the train step's suggestion through its constant, and
    reads a backticked command up to its closing backtick."""
    suggested = {c.text for c in suggested_commands()}
    from conll_ner.commands import CPU_TRAINING, GPU_INSTALL

    assert {CPU_TRAINING, GPU_INSTALL} <= suggested
    found = message_commands("run `spacy project run all\n. --vars.lang es` first", "x")
    assert [c.tokens for c in found] == [["spacy", "project", "run", "all", ".", "--vars.lang", "es"]]


def test_readme_generated_parts_are_current():
    """The weasel tables and the vars tables, rendered afresh from project.yml
    (the results table: benchmarks/tests/test_benchmark_reports.py)."""
    current = (PROJECT_DIR / "README.md").read_text(encoding="utf8")
    assert render_readme(current, PROJECT_DIR) == current, "README.md is not current: run `spacy project run document`"


def test_every_var_is_in_a_group_of_the_vars_tables():
    import yaml

    project_yml = (PROJECT_DIR / "project.yml").read_text(encoding="utf8")
    groups = documented_var_groups(project_yml)
    assert [group.title.split(" (")[0] for group in groups] == [
        "The main workflow",
        "Distillation",
        "Annotating a corpus and serving a pipeline",
    ]
    names = [name for group in groups for name, _, _ in group.variables]
    assert names == list(yaml.safe_load(project_yml)["vars"])
    with pytest.raises(ValueError, match="no_comment has no comment"):
        documented_var_groups("vars:\n  # === g ===\n  # one\n  a: 1\n  no_comment: 2\ncommands: []\n")
    with pytest.raises(ValueError, match="before the first"):
        documented_var_groups("vars:\n  # one\n  a: 1\ncommands: []\n")


def test_readme_and_docs_state_no_figure_that_benchmarks_md_does_not():
    """Figures with two decimals (F1, ratios) are measured ones: each must be
    one BENCHMARKS.md states, so the README and the docs never disagree with it."""
    benchmarks = (PROJECT_DIR / "BENCHMARKS.md").read_text(encoding="utf8")
    from importlib.metadata import distributions

    figure = re.compile(r"(?:(\S+) )?(?<![\d.])(\d+\.\d\d)(?![\d.%])")
    stated = {value for _, value in figure.findall(benchmarks)}
    long_results = json.loads((PROJECT_DIR / "benchmarks" / "results" / "results_long.json").read_text(encoding="utf8"))
    # the pattern reads BENCHMARKS.md's figures: the long mode's dev F1 among them
    assert f"{long_results['spacy_trf']['dev']['f1'] * 100:.2f}" in stated
    # a version after a package's name ("transformers 4.53") is not a figure
    packages = {dist.metadata["Name"].lower() for dist in distributions()} | {"python", "cuda", "version"}
    missing = [
        f"{path.relative_to(PROJECT_DIR)}: {value}"
        for path in DOC_FILES
        for before, value in figure.findall(path.read_text(encoding="utf8"))
        if value not in stated and before.strip("`(").lower() not in packages
    ]
    assert not missing, missing


# A measured figure in code: a number with a unit of time, speed or ratio, an
# F1 score, or a decimal of 1 or more that is no version.
MEASURED = re.compile(
    r"(?<![\w.])\d[\d,]*(?:\.\d+)?\s?(?:x|%|s|ms|min|words/s|updates/s)(?![\w/])"
    r"|\bF1\s(?:of\s)?\d|(?<![\w.])\d+(?:\.\d+)?\s(?:dev\s|test\s)?F1\b"
    r"|(?<![\w.<>=~-])(?:[1-9]\d*)\.\d+(?![\w.])"
)


def code_texts(path: Path):
    """(line, text) of a config's comments, or of a Python file's comments
    and docstrings."""
    import ast
    import io
    import tokenize

    source = path.read_text(encoding="utf8")
    if path.suffix == ".cfg":
        yield from ((n, line) for n, line in enumerate(source.splitlines(), 1) if line.lstrip().startswith("#"))
        return
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                yield from ((node.body[0].lineno + n, line) for n, line in enumerate(docstring.splitlines()))


def measured_figures(text: str, packages: set) -> list:
    """The measured figures of one line: a number after a package's name is
    its version, not a figure."""
    found = []
    for match in MEASURED.finditer(text):
        before = text[: match.start()].split()
        if before and before[-1].strip("`(").lower() in packages:
            continue
        found.append(match.group(0))
    return found


def test_configs_and_docstrings_state_no_measured_figure():
    """Configs and code say what a setting does and why and link the evidence;
    the figures themselves live in docs/decisions.md or BENCHMARKS.md, where
    they have a date and one home."""
    from importlib.metadata import distributions

    packages = {dist.metadata["Name"].lower() for dist in distributions()} | {
        "python",
        "cuda",
        "version",
        "spacy",
        "weasel",
        "click",
        "torch",
        "transformers",
        "spacy-transformers",
        "thinc",
        "onnxruntime",
        "optimum",
    }
    sample = "an update took 1.31x as long, losses 0.05% apart, 87.2 dev F1 (F1 88.6), ~30 s, 3.7 times"
    assert measured_figures(sample, packages) == ["1.31x", "0.05%", "87.2 dev F1", "F1 8", "30 s", "3.7"]
    assert measured_figures("transformers 4.53.3 and click 8.2", packages) == []
    paths = sorted((PROJECT_DIR / "configs").glob("*.cfg"))
    paths += sorted(path for folder in ("conll_ner", "scripts") for path in (PROJECT_DIR / folder).rglob("*.py"))
    found = [
        f"{path.relative_to(PROJECT_DIR)}:{line}: {figure} in {text.strip()!r}"
        for path in paths
        for line, text in code_texts(path)
        for figure in measured_figures(text, packages)
    ]
    assert not found, "\n".join(found)


def test_readme_links_resolve():
    text = (PROJECT_DIR / "README.md").read_text(encoding="utf8")
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)]+)\)", text) if not t.startswith("http")]
    assert targets and all((PROJECT_DIR / target).exists() for target in targets if target), targets

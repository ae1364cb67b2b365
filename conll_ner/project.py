"""The project's workflow run as a user runs it, from code that needs it in
a child process or a throw-away place (the tests, the benchmark harness): a
copy of the workflow files, the spaCy CLI arguments of a project command,
and a fresh environment without this package, where a packaged pipeline
must load on its own."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Dict, List

# what a workflow step needs of the project to run as a user runs it
PROJECT_FILES = ("project.yml", "configs", "scripts")


def copy_project(project_dir: Path, target: Path) -> Path:
    """The workflow files of the project at `project_dir` copied into
    target, for steps to run in as a user runs them while their outputs land
    in the copy."""
    target.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = project_dir / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target / name)
    return target


def project_run_args(project: Path, command: str, variables: Dict[str, str]) -> List[str]:
    """The arguments that run a project command through spaCy's CLI in a
    subprocess: the project folder comes before the vars, which weasel 1.0
    with click 8.5 refuses to parse without it."""
    return [sys.executable, "-m", "spacy", "project", "run", command, str(project)] + [
        f"--vars.{key}={value}" for key, value in variables.items()
    ]


def venv_without_project(venv: Path) -> Path:
    """A fresh virtual environment that reuses the installed dependencies
    (linked in, as there is no network for installing them) but not this
    project's package, its metadata or its spaCy entry points: where a
    packaged pipeline must load on its own."""
    subprocess.run([sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)], check=True)
    site_packages = next(venv.glob("lib/python*/site-packages"))
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "conll_ner" not in entry.name and "conll-ner" not in entry.name:
            (site_packages / entry.name).symlink_to(entry)
    return venv

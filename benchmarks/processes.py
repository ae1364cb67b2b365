"""Benchmark steps in processes of their own: each measurement's peak
memory is its own, and no step warms the caches of another."""

import json
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any, Dict, List

from wasabi import msg

PROJECT_DIR = Path(__file__).resolve().parent.parent
# what a workflow step needs of the project to run as a user runs it
PROJECT_FILES = ("project.yml", "configs", "scripts")


def run_checked(args: List[str]) -> float:
    """Run a step in its own process from the project folder; return its wall time."""
    started = time.perf_counter()
    result = subprocess.run(args, cwd=PROJECT_DIR, capture_output=True, text=True)
    if result.returncode != 0:
        msg.fail(f"{' '.join(args)} failed", result.stdout[-3000:] + result.stderr[-3000:], exits=1)
    return time.perf_counter() - started


def measure_in_subprocess(args: List[str], output_json: Path) -> Dict[str, Any]:
    """Run a measuring command (a script and its arguments) that writes its
    figures to --output-json; return them."""
    run_checked([sys.executable, *args, "--output-json", str(output_json)])
    return json.loads(output_json.read_text())


def copy_project(target: Path) -> Path:
    """The project's workflow files copied into target, for steps to run in
    as a user runs them while their outputs land in the copy."""
    target.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = PROJECT_DIR / name
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


def long_quick_pipeline(settings: Dict[str, Any], use: str) -> Path:
    """The pipeline a serving mode works on (`settings["pipeline"]` below
    benchmarks/work, which the long_quick mode trains), or a clear stop
    saying how to make it; `use` says what the mode does with it."""
    model = PROJECT_DIR / "benchmarks" / "work" / settings["pipeline"]
    if not (model / "meta.json").is_file():
        msg.fail(
            f"{model} is missing: {use} the pipeline that the long_quick mode trains "
            "(spacy project run benchmark . --vars.benchmark_mode long_quick)",
            exits=1,
        )
    return model

"""Run the project's workflow steps in a throw-away copy of the project."""

import subprocess
from pathlib import Path
from typing import Dict, Optional

from conftest import PROJECT_DIR
from fixtures import DUTCH, ENGLISH_TEST, ENGLISH_TRAIN, SPANISH

from conll_ner import project
from conll_ner.project import project_run_args


def copy_project(target: Path) -> Path:
    """This checkout's workflow files copied into target."""
    return project.copy_project(PROJECT_DIR, target)


def write_fixture_assets(project: Path, repeat: int = 1) -> None:
    """The quirky fixtures as every split of every language."""
    files = {
        "conll2003/eng.train": (ENGLISH_TRAIN * repeat, "utf-8"),
        "conll2003/eng.testa": (ENGLISH_TRAIN, "utf-8"),
        "conll2003/eng.testb": (ENGLISH_TEST, "utf-8"),
        "conll2002/esp.train": ((SPANISH + "\n\n") * repeat, "latin-1"),
        "conll2002/esp.testa": (SPANISH, "latin-1"),
        "conll2002/esp.testb": (SPANISH, "latin-1"),
        "conll2002/ned.train": (DUTCH * repeat, "latin-1"),
        "conll2002/ned.testa": (DUTCH, "latin-1"),
        "conll2002/ned.testb": (DUTCH, "latin-1"),
    }
    for relative, (text, encoding) in files.items():
        path = project / "assets" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode(encoding))


def run_project(project: Path, command: str, variables: Optional[Dict[str, str]] = None, timeout: int = 900):
    args = project_run_args(project, command, variables or {})
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=project)

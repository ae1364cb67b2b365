"""Where the harness and the project it measures are, and benchmark steps in
processes of their own: each measurement's peak memory is its own, and no
step warms the caches of another."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from wasabi import msg

BENCH_DIR = Path(__file__).resolve().parent
# the project whose workflow the harness runs (its scripts, configs and project.yml)
PROJECT_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
WORK_DIR = BENCH_DIR / "work"


def run_checked(args: List[str], env: Optional[Dict[str, str]] = None) -> float:
    """Run a step in its own process from the project folder; return its wall time."""
    started = time.perf_counter()
    result = subprocess.run(args, cwd=PROJECT_DIR, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        msg.fail(f"{' '.join(args)} failed", result.stdout[-3000:] + result.stderr[-3000:], exits=1)
    return time.perf_counter() - started


def measure_in_subprocess(args: List[str], output_json: Path) -> Dict[str, Any]:
    """Run a measuring command of the harness (one of its modules and its
    arguments) that writes its figures to --output-json; return them. The
    harness's folder is on the command's import path, as it is on a script's
    that runs from it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), os.environ.get("PYTHONPATH", "")])}
    run_checked([sys.executable, *args, "--output-json", str(output_json)], env=env)
    return json.loads(output_json.read_text())


def long_quick_pipeline(settings: Dict[str, Any], use: str) -> Path:
    """The pipeline a serving mode works on (`settings["pipeline"]` below
    benchmarks/work, which the long_quick mode trains), or a clear stop
    saying how to make it; `use` says what the mode does with it."""
    model = WORK_DIR / settings["pipeline"]
    if not (model / "meta.json").is_file():
        msg.fail(
            f"{model} is missing: {use} the pipeline that the long_quick mode trains "
            "(spacy project run benchmark benchmarks --vars.mode long_quick)",
            exits=1,
        )
    return model

"""Our spaCy pipelines against the Hugging Face Trainer recipe, side by side
on this machine: dev scores (seqeval), training time, CPU inference speed and
memory. Settings per mode are in benchmarks/modes.json, the code of each mode
in benchmarks/modes/ (registry.MODES names them).

Each inference measurement runs in a process of its own, so that its peak
memory is its own and no measurement warms the caches of another.
"""

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

import gpu_run
import registry
import typer
from common import machine, versions
from processes import PROJECT_DIR, RESULTS_DIR, WORK_DIR
from registry import KEYED_MODES, SETTINGS
from report import read_json, render_pages, results_png, write_benchmarks_md
from wasabi import msg

from conll_ner.files import write_atomically

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


def merged_results(key: str, results: Dict[str, Any], previous: Dict[str, Any]) -> Dict[str, Any]:
    """What a mode's results file holds after a run: results.json keeps the
    full mode's results at the top and the keyed modes' under their names
    (`key`: the mode's, or for a quick check its module's), each run
    replacing only its own."""
    if key in KEYED_MODES:
        return {**previous, key: results}
    if key == "full":
        return {**results, **{keyed: previous[keyed] for keyed in KEYED_MODES if keyed in previous}}
    return results


def current_commit() -> Optional[str]:
    """The commit of the project the harness measures (None outside a git checkout)."""
    found = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else None


@app.command("render")
def render_command() -> None:
    """Re-render BENCHMARKS.md, the results sections of docs/multilingual.md
    and docs/recipes.md and the README's results table from the results
    files, without running anything."""
    render_pages()
    msg.good(
        "Rendered BENCHMARKS.md, the results sections of docs/multilingual.md and docs/recipes.md "
        "and the README's results table"
    )


@app.command("run")
def run_command(
    data_dir: Path = typer.Option(
        PROJECT_DIR.parent / "shared" / "data", "--data-dir", help="Folder with conll2003/eng.train, eng.testa"
    ),
    mode: str = typer.Option(
        "full",
        "--mode",
        help="full, long, distill, distill_scale, annotate, inference, serving, serving_http, update_cost or their quick checks (see benchmarks/modes.json)",
    ),
    work: Path = typer.Option(WORK_DIR, "--work-dir", help="Models and intermediate files"),
) -> None:
    """Run every part of a mode. A mode writes its results file in benchmarks/results/ and re-renders
    BENCHMARKS.md and the README's results table from the results files; a quick check writes into the
    work dir only."""
    settings = SETTINGS[mode]
    caps = settings.get("kernel_caps", {})
    if any(os.environ.get(name) != value for name, value in caps.items()):
        # the caps act when the libraries load, which this process has done: run again under them
        msg.info(f"Running again with the mode's kernel caps: {caps}")
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **caps})
    for name in ("eng.train", "eng.testa"):
        if not (data_dir / "conll2003" / name).is_file():
            msg.fail(f"{data_dir / 'conll2003' / name} is missing: pass --data-dir (or --vars.data)", exits=1)
    work = work / mode
    started = time.perf_counter()
    header = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": current_commit(),
        "machine": machine(),
        "versions": versions(),
        "mode": mode,
        "settings": settings,
    }
    kind, module = registry.kind(mode), registry.module(mode)
    final = not registry.is_check(mode)
    results = {**header, **module.run(data_dir, work, settings)}
    curve_png = ""
    if hasattr(module, "curve_name"):
        curve = module.curve_name(mode)
        module.plot_learning_curves(results, (RESULTS_DIR if final else work) / curve)
        curve_png = results_png(curve) if final else curve
    results["total_seconds"] = time.perf_counter() - started
    results_path = RESULTS_DIR / module.RESULTS_FILE if final else work / "results.json"
    key = registry.results_key(mode, header["machine"]) if final else kind
    stored = merged_results(key, results, (read_json(results_path) if final else None) or {})
    write_atomically(results_path, (json.dumps(stored, indent=2) + "\n").encode("utf8"))
    if final:
        report_path = PROJECT_DIR / "BENCHMARKS.md"
        render_pages()
    else:
        report_path = work / "BENCHMARKS.md"
        if kind == "long":
            write_benchmarks_md(report_path, None, stored, curve_png)
        else:
            write_benchmarks_md(report_path, stored, None, curve_png)
    msg.good(f"Benchmark ({mode}) done in {results['total_seconds'] / 60:.1f} min: {report_path}, {results_path}")


@app.command("gpu-results")
def gpu_results_command(
    raw: Path = typer.Argument(
        ..., exists=True, file_okay=False, help="The run's files: benchmarks/results/gpu/<date>-<gpu>"
    ),
    remark: List[str] = typer.Option([], "--remark", help="What the figures do not say by themselves (repeatable)"),
) -> None:
    """Derive results_gpu.json from a GPU run's files (benchmarks/gpu_run.sh) and re-render BENCHMARKS.md."""
    results = gpu_run.collect(raw.resolve(), remark)
    write_atomically(gpu_run.RESULTS_PATH, (json.dumps(results, indent=2) + "\n").encode("utf8"))
    render_pages()
    msg.good(f"Wrote {gpu_run.RESULTS_PATH.relative_to(PROJECT_DIR)} and rendered BENCHMARKS.md")


if __name__ == "__main__":
    app()

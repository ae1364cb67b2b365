"""Run a command and measure the memory of its whole process tree; optionally
kill the tree (SIGKILL to its process group) when a file reaches a number of
lines. Writes what it measured to --output-json.

It runs as a small process of its own, between the benchmark and the
command: a forked process starts with its parent's peak RSS as its own
(Linux copies the memory map's high-water mark on fork and keeps it across
exec), so the kernel's peak of a command started straight from a large
benchmark process would be the benchmark's. This process makes itself the
subreaper of the tree, so that processes orphaned by a kill are reaped here
and counted too.

- peak_tree_rss_mb: the largest sum of the RSS of the command and all its
  descendants, sampled every --interval seconds;
- largest_process_peak_rss_mb: the kernel's peak RSS of the largest single
  process of the tree (this process's ru_maxrss of its reaped children);
- processes: each process of the tree, its sampled peak RSS and the command
  lines it showed (Ray renames its workers), the command's own first.

`measure_tree` runs a command under it from a benchmark (the distill_scale
and serving modes).
"""

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import psutil
import typer
from wasabi import msg

# prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are reparented to this process
PR_SET_CHILD_SUBREAPER = 36


def sample_tree(root: psutil.Process, peaks: Dict[int, Dict[str, Any]]) -> int:
    """RSS of a process and all its descendants, summed (0 once it is gone);
    each one's peak and command lines are kept in `peaks`, by pid."""
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            rss, name = process.memory_info().rss, " ".join(process.cmdline())[:120]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += rss
        seen = peaks.setdefault(process.pid, {"pid": process.pid, "names": [], "peak_rss_mb": 0.0})
        if name and name not in seen["names"]:
            seen["names"].append(name)
        seen["peak_rss_mb"] = max(seen["peak_rss_mb"], rss / 2**20)
    return total


def line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def main(
    command: List[str] = typer.Argument(..., help="The command and its arguments (after --)"),
    output_json: Path = typer.Option(..., "--output-json"),
    log: Path = typer.Option(..., "--log", help="The command's stdout and stderr"),
    cwd: Path = typer.Option(Path("."), "--cwd"),
    interval: float = typer.Option(0.2, "--interval", help="Seconds between samples"),
    kill_file: Optional[Path] = typer.Option(None, "--kill-file", help="Kill the tree once this file has..."),
    kill_lines: int = typer.Option(0, "--kill-lines", help="...at least this many lines"),
) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    started = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        root = psutil.Process(process.pid)
        peak, samples, killed = 0, 0, False
        peaks: Dict[int, Dict[str, Any]] = {}
        while process.poll() is None:
            peak = max(peak, sample_tree(root, peaks))
            samples += 1
            if kill_file is not None and not killed and line_count(kill_file) >= kill_lines:
                os.killpg(process.pid, signal.SIGKILL)
                killed = True
            time.sleep(interval)
    seconds = time.perf_counter() - started
    # the orphans of a kill (or of a parent that did not wait) are ours to reap
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = {
        "seconds": seconds,
        "peak_tree_rss_mb": peak / 2**20,
        "largest_process_peak_rss_mb": largest / 1024,
        "rss_samples": samples,
        "returncode": process.returncode,
        "killed": killed,
        "processes": list(peaks.values()),
    }
    output_json.parent.mkdir(parents=True, exist_ok=True)
    output_json.write_text(json.dumps(result, indent=2) + "\n")


def measure_tree(
    args: List[str],
    cwd: Path,
    log: Path,
    interval: float,
    env: Optional[Mapping[str, str]] = None,
    kill_file: Optional[Path] = None,
    kill_lines: int = 0,
) -> Dict[str, Any]:
    """Run a command (in `env`, or this environment) under this module,
    which samples the RSS of its whole process tree every `interval`
    seconds; with `kill_file`, SIGKILL its process group once that file has
    `kill_lines` lines. A command that fails unkilled stops the benchmark
    with its log."""
    output = log.with_suffix(".json")
    launcher = [sys.executable, str(Path(__file__).resolve()), "--output-json", str(output), "--log", str(log)]
    launcher += ["--cwd", str(cwd), "--interval", str(interval)]
    if kill_file is not None:
        launcher += ["--kill-file", str(kill_file), "--kill-lines", str(kill_lines)]
    launched = subprocess.run([*launcher, "--", *args], env=env, capture_output=True, text=True)
    if launched.returncode != 0:
        msg.fail(f"{' '.join(launcher)} failed", launched.stderr[-3000:], exits=1)
    measured = json.loads(output.read_text())
    if measured["returncode"] != 0 and not measured["killed"]:
        msg.fail(f"{' '.join(args)} failed", log.read_text()[-3000:], exits=1)
    return measured


if __name__ == "__main__":
    typer.run(main)

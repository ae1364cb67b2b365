"""What the train step's memory release costs and saves: the documented train
step (scripts/train.py with configs/transformer.cfg, on the CPU) run for the
same updates on the same corpus with the config's memory release
(conll_ner.release_freed_memory.v1, its default), without it (glibc's own
policy), and without it under a fixed 1 MB mmap threshold (glibc's
MALLOC_MMAP_THRESHOLD_, what the train step set before). Each run is a
process of its own, as a user starts it; the variants alternate in rounds,
so that a slower spell of a shared machine falls on all of them. A run's
seconds per update come from its training log (first to last evaluation,
without loading); its peak resident memory from the kernel (wait4).
The figures go to --output-json (benchmarks/results/results_train_memory.json),
from which BENCHMARKS.md renders them."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import spacy
import typer
from common import machine_line, remarks, script_provenance
from processes import PROJECT_DIR
from spacy.tokens import DocBin
from spacy.util import load_config

from conll_ner.files import write_json
from conll_ner.runs import training_path

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])

RESULTS_FILE = "results_train_memory.json"
# variant: (config overrides, environment) on top of the documented train step
VARIANTS: Dict[str, Tuple[List[str], Dict[str, str]]] = {
    "the config's memory release (its default)": ([], {}),
    "never released (glibc's default)": (["--training.before_update", "null"], {}),
    "mmap threshold fixed at 1 MB (the earlier default)": (
        ["--training.before_update", "null"],
        {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)},
    ),
}
DEFAULT = next(iter(VARIANTS))


def benchmark_corpus(train: Path, dev_docs: int, lang: str, folder: Path) -> Path:
    """A convert step's output folder: the whole training DocBin, and its
    first `dev_docs` documents as the dev set, so that the two evaluations
    of a run (its first and its last) cost next to nothing."""
    for split in ("train", "dev"):
        training_path(folder, lang, split).parent.mkdir(parents=True)
    os.symlink(train.resolve(), training_path(folder, lang, "train"))
    vocab = spacy.blank(lang).vocab
    docs = list(DocBin().from_disk(train).get_docs(vocab))[:dev_docs]
    DocBin(docs=docs, store_user_data=True).to_disk(training_path(folder, lang, "dev"))
    return folder


def run_train_step(
    corpus: Path, lang: str, transformer: str, updates: int, variant: str, output: Path
) -> Dict[str, float]:
    """One run of the train step under `variant`: seconds per update and peak resident MB."""
    overrides, environment = VARIANTS[variant]
    command = [
        sys.executable, "scripts/train.py", "configs/transformer.cfg", str(output), "--lang", lang,
        "--corpus", str(corpus), "--transformer", transformer, "--gpu-id", "-1", "--max-steps", str(updates),
        "--training.eval_frequency", str(updates), *overrides,
    ]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_MMAP_THRESHOLD_"}
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=PROJECT_DIR, env={**env, **environment}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    log = child.stdout.read().decode("utf8", "replace") if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    exit_code = os.waitstatus_to_exitcode(status)
    if exit_code != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({exit_code}):\n{log[-3000:]}")
    evaluations = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    first, last = evaluations[0], evaluations[-1]
    return {
        "seconds_per_update": (last["seconds"] - first["seconds"]) / (last["step"] - first["step"]),
        "updates": last["step"],
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "process_seconds": time.perf_counter() - started,
    }


def release_setting() -> Dict[str, Any]:
    """The memory release that configs/transformer.cfg names, as its [training.before_update] says."""
    return dict(load_config(PROJECT_DIR / "configs" / "transformer.cfg")["training"]["before_update"])


@app.command()
def main(
    train: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="A training DocBin, e.g. corpus/train/es.spacy"
    ),
    transformer: str = typer.Option(..., "--transformer", help="The encoder, as the train step's --transformer"),
    lang: str = typer.Option(..., "--lang", help="The training DocBin's language"),
    updates: int = typer.Option(100, "--updates", help="Updates per run"),
    rounds: int = typer.Option(2, "--rounds", help="Runs of each variant, alternated"),
    dev_docs: int = typer.Option(3, "--dev-docs", help="Documents of the training file evaluated at a run's ends"),
    output_json: Path = typer.Option(..., "--output-json"),
) -> None:
    runs: Dict[str, List[Dict[str, float]]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = benchmark_corpus(train, dev_docs, lang, Path(tmp) / "corpus")
        for round_index in range(rounds):
            for index, variant in enumerate(VARIANTS):
                output = Path(tmp) / f"run-{round_index}-{index}"
                runs[variant].append(run_train_step(corpus, lang, transformer, updates, variant, output))
                typer.echo(f"Round {round_index + 1} of {rounds}, {variant}: {runs[variant][-1]}")
    write_json(
        output_json,
        {
            **script_provenance(),
            "settings": {
                "lang": lang,
                "transformer": transformer,
                "updates": updates,
                "rounds": rounds,
                "release": release_setting(),
            },  # fmt: skip
            "runs": runs,
        },
    )


def report_markdown(results: Dict[str, Any]) -> str:
    """One row per variant: median seconds per update, against the default,
    and the largest peak resident memory of its runs."""
    runs = results["runs"]
    default = statistics.median(run["seconds_per_update"] for run in runs[DEFAULT])
    lines = [
        "## Memory of the train step (`benchmarks/train_memory.py`)",
        "",
        f"The documented train step on the CPU, {results['settings']['updates']} updates per run, "
        f"{results['settings']['rounds']} runs of each variant alternated; language "
        f"{results['settings']['lang']}, encoder `{results['settings']['transformer']}`. Seconds per update: "
        "the median over runs, from each run's training log (without loading). Peak RSS: the largest of its runs. "
        f"The config's memory release: `{json.dumps(results['settings']['release'])}`.",
        "",
        "| Variant | Seconds per update | x default | Peak RSS MB |",
        "|---|---:|---:|---:|",
    ]
    for variant, variant_runs in runs.items():
        seconds = statistics.median(run["seconds_per_update"] for run in variant_runs)
        peak = max(run["peak_rss_mb"] for run in variant_runs)
        # the training log counts whole seconds: a run of tiny updates can log none
        ratio = f"{seconds / default:.2f}" if default else "-"
        lines.append(f"| {variant} | {seconds:.3f} | {ratio} | {peak:,.0f} |")
    lines += ["", f"`{results['command']}`  ", f"Date: {results['date']}  ", machine_line(results["machine"])]
    lines += remarks(results)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    app()

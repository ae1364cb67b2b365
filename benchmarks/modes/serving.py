"""What serving a packaged pipeline costs on a fresh machine (the `serving`
mode): the package step's wheel, installed into a fresh virtual
environment, loaded and asked for its first prediction in a fresh process;
and the peak memory of `annotate` with worker processes and with Ray actors.
Every run gets an empty cache folder (XDG_CACHE_HOME, HF_HOME, TORCH_HOME),
which must still be empty afterwards, and the workers' peak memory is set
against the pipeline's size on disk: an encoder exported on the way would
leave files there or peak at about ten times the encoder's size.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from common import mode_header, ratios_and_targets, remarks
from process_tree import measure_tree
from processes import PROJECT_DIR, long_quick_pipeline, run_checked
from spacy.tokens import DocBin
from wasabi import msg

from conll_ner.evaluation.metrics import evaluate_docbin, score_summary
from conll_ner.files import write_atomically
from conll_ner.project import venv_without_project

RESULTS_FILE = "results.json"
RESULTS_KEY = "serving"

# a worker's peak RSS may exceed its pipeline's files by the runtime's own
# memory (a process that imports what a worker imports, measured in the run)
# plus this much: a batch's activations, ONNX Runtime's arena, spaCy's
# vocab. An export on the way would add about ten times the encoder's size.
WORKER_MARGIN_MB = 512
# what a worker imports before it loads a pipeline, per engine
WORKER_IMPORTS = {
    "local": "torch, spacy, spacy_transformers, transformers, onnxruntime",
    "ray": "torch, spacy, spacy_transformers, transformers, onnxruntime, ray, pyarrow",
}
# modules that only an export imports (tests/test_no_export.py guards the same)
EXPORT_TOOLS = ("conll_ner.packaging.int8", "onnxruntime.quantization", "onnxruntime.transformers")
FIRST_TEXT = "Peter Blackburn wrote from Brussels on Tuesday ."

# runs in the fresh environment, where the project is not installed
FIRST_PREDICTION = """
import json, sys, time
started = time.perf_counter()
import spacy
imported = time.perf_counter()
nlp = spacy.load(sys.argv[1])
loaded = time.perf_counter()
doc = nlp(sys.argv[2])
predicted = time.perf_counter()
shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({
    "import_seconds": imported - started,
    "load_seconds": loaded - imported,
    "first_prediction_seconds": predicted - loaded,
    "entities": [[ent.text, ent.label_] for ent in doc.ents],
    "carries_int8": shim.int8_graph is not None,
    "precision": shim.precision(),
    "export_tools_imported": sorted(m for m in sys.modules if m.startswith(%r)),
    "peak_rss_mb": int(hwm.split()[1]) / 1024,
}))
"""


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def empty_cache_env(folder: Path) -> Dict[str, str]:
    """The environment of a run on a machine whose caches are empty."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    caches = {name: str(folder / name.lower()) for name in ("XDG_CACHE_HOME", "HF_HOME", "TORCH_HOME")}
    return {**os.environ, **caches, "HF_HUB_OFFLINE": "1"}


def cache_files(folder: Path) -> List[str]:
    """What a run left in its caches. ONNX Runtime keeps a device id of its
    own there (Microsoft/DeveloperTools); an export would leave a graph."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def exported_graphs(files: List[str]) -> List[str]:
    return [name for name in files if name.endswith((".onnx", ".onnx.data", ".ort"))]


def runtime_base_mb(engine: str) -> float:
    """Peak RSS of a fresh process that imports what a worker of the engine
    imports, and loads no pipeline."""
    script = (
        f"import {WORKER_IMPORTS[engine]}\nprint(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[1]) / 1024


def build_wheel(model: Path, train_log: Path, dev: Path, work: Path) -> Dict[str, Any]:
    """The package step as the workflow runs it (scripts/package.py: int8
    encoder, card, wheel), with the dev scores as the evaluate step writes
    them; the package's served scores are taken on the dev set alone."""
    import spacy

    corpus = work / "package-corpus"
    (corpus / "dev").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dev, corpus / "dev" / "en.spacy")
    metrics_path = work / "package-metrics.json"
    metrics, _ = evaluate_docbin(spacy.load(model), dev)
    write_atomically(metrics_path, (json.dumps({"dev-en": score_summary(metrics)}, indent=2) + "\n").encode("utf8"))
    output = work / "packages"
    shutil.rmtree(output, ignore_errors=True)
    seconds = run_checked(
        [
            sys.executable,
            "scripts/package.py",
            str(model),
            str(output),
            "--lang",
            "en",
            "--version",
            "0.0.0",
            "--metrics",
            str(metrics_path),
            "--train-log",
            str(train_log),
            "--corpus",
            str(corpus),
        ]
    )
    (wheel,) = output.glob("*/dist/*.whl")
    return {"wheel": str(wheel), "wheel_mb": wheel.stat().st_size / 2**20, "package_seconds": seconds}


def installed_first_prediction(wheel: Path, work: Path) -> Dict[str, Any]:
    """Install the wheel into a fresh environment without the project and,
    in a fresh process with empty caches, time `import spacy`, `spacy.load`
    and the first prediction."""
    venv = venv_without_project(work / "venv")
    python = str(venv / "bin" / "python")
    run_checked([python, "-m", "pip", "install", "--no-index", "--no-deps", "--force-reinstall", str(wheel)])
    name = wheel.name.split("-")[0]
    cache = work / "cache-first-prediction"
    result = subprocess.run(
        [python, "-c", FIRST_PREDICTION % (EXPORT_TOOLS,), name, FIRST_TEXT],
        capture_output=True,
        text=True,
        cwd=work,
        env=empty_cache_env(cache),
    )
    if result.returncode != 0:
        msg.fail(f"The installed {name} failed to predict", result.stderr[-3000:], exits=1)
    return {"package": name, **json.loads(result.stdout.splitlines()[-1]), "cache_files": cache_files(cache)}


def is_worker(names: List[str]) -> bool:
    """A local engine's spawned worker or a Ray actor that ran a task."""
    return any("spawn_main" in name or (name.startswith("ray::") and name != "ray::IDLE") for name in names)


def annotate_peak_rss(pipeline: Path, inputs: Path, work: Path, engine: str, workers: int) -> Dict[str, Any]:
    """`annotate` (scripts/annotate.py, as the project's annotate command
    runs it) with `workers` local processes or Ray actors, on empty caches:
    each worker's peak RSS, the peak of the whole process tree, and what the
    cache holds afterwards."""
    name = f"annotate-{engine}-{workers}"
    cache, output = work / f"cache-{name}", work / name
    shutil.rmtree(output, ignore_errors=True)
    args = [sys.executable, "scripts/annotate.py", str(pipeline), str(inputs), str(output), "--engine", engine]
    measured = measure_tree(
        [*args, "--workers", str(workers)], PROJECT_DIR, work / f"{name}.log", 0.2, empty_cache_env(cache)
    )
    processes = measured["processes"]
    worker_peaks = sorted((p["peak_rss_mb"] for p in processes if is_worker(p["names"])), reverse=True)[:workers]
    return {
        "engine": engine,
        "workers": workers,
        "seconds": measured["seconds"],
        "worker_peak_rss_mb": worker_peaks,
        # the command's own process comes first
        "driver_peak_rss_mb": processes[0]["peak_rss_mb"],
        "tree_peak_rss_mb": measured["peak_tree_rss_mb"],
        "processes": len(processes),
        "cache_files": cache_files(cache),
        "runtime_base_mb": runtime_base_mb(engine),
    }


def write_annotate_input(dev: Path, folder: Path, shards: int) -> Path:
    """The dev documents' texts as JSONL, spread over `shards` files."""
    import spacy

    texts = [doc.text for doc in DocBin().from_disk(dev).get_docs(spacy.blank("en").vocab)]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for shard in range(shards):
        lines = "".join(json.dumps({"text": text}) + "\n" for text in texts[shard::shards])
        write_atomically(folder / f"part-{shard}.jsonl", lines.encode("utf8"))
    return folder


def measure_serving(
    model: Path, train_log: Path, dev: Path, work: Path, workers: int, engines: Optional[List[str]] = None
) -> Dict[str, Any]:
    """The package step's wheel and its first prediction once installed;
    annotate's peak memory with `workers` workers per engine (the packaged
    pipeline folder, its int8 encoder included)."""
    work.mkdir(parents=True, exist_ok=True)
    msg.info("Packaging the pipeline as the package step does")
    package = build_wheel(model, train_log, dev, work)
    msg.info(f"Installing {Path(package['wheel']).name} into a fresh environment: first prediction")
    first = installed_first_prediction(Path(package["wheel"]), work)
    (pipeline,) = (p.parent for p in Path(package["wheel"]).parent.parent.glob("*/*/meta.json"))
    inputs = write_annotate_input(dev, work / "annotate-input", 2 * workers)
    annotate = []
    for engine in engines or ["local", "ray"]:
        msg.info(f"annotate with {workers} {'Ray actors' if engine == 'ray' else 'worker processes'}: peak memory")
        annotate.append(annotate_peak_rss(pipeline, inputs, work, engine, workers))
    pipeline_mb = folder_mb(pipeline)
    return {
        **package,
        "pipeline_mb": pipeline_mb,
        "worker_margin_mb": WORKER_MARGIN_MB,
        "installed_first_prediction": first,
        "annotate": annotate,
    }


def serving_targets(served: Dict[str, Any]) -> Dict[str, bool]:
    """Nothing exported where the pipeline is installed or annotates, and
    each annotate worker within its pipeline's size plus the margin."""
    first = served["installed_first_prediction"]
    targets = {
        "the installed wheel predicts without exporting (no export tool imported, no graph in the caches)": (
            not first["export_tools_imported"] and not exported_graphs(first["cache_files"])
        )
    }
    for run in served["annotate"]:
        engine = "Ray actors" if run["engine"] == "ray" else "worker processes"
        key = f"annotate, {run['workers']} {engine}: no graph in the caches, each worker <= pipeline + runtime + margin"
        targets[key] = (
            not exported_graphs(run["cache_files"])
            and len(run["worker_peak_rss_mb"]) == run["workers"]
            and all(peak <= worker_allowance_mb(served, run) for peak in run["worker_peak_rss_mb"])
        )
    return targets


def worker_allowance_mb(served: Dict[str, Any], run: Dict[str, Any]) -> float:
    """The most a worker of `run` may take: its pipeline's files, the
    runtime's own memory and the margin."""
    return served["pipeline_mb"] + run["runtime_base_mb"] + served["worker_margin_mb"]


def run(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """The serving mode: the mode's pipeline (a MiniLM pipeline of the
    default recipe; how long it trained changes none of the figures here)
    through the package step, installed and loaded; annotate's workers."""
    from cpu_inference import write_dev_files

    model = long_quick_pipeline(settings, "the serving mode packages")
    paths, dev_set = write_dev_files(data_dir, work, settings["dev_sentences"])
    served = measure_serving(model, model.parent / "train_log.jsonl", paths["documents"], work, settings["workers"])
    return {"pipeline": str(model), "dev_set": dev_set, **served, "targets": serving_targets(served)}


def report_markdown(served: Dict[str, Any]) -> str:
    """The serving mode: the installed wheel's first prediction and
    annotate's peak memory per engine."""
    first = served["installed_first_prediction"]
    lines = [
        *mode_header("## Serving the packaged pipeline on a fresh machine (`serving` mode)", served),
        f"An all-MiniLM-L6-v2 pipeline of configs/transformer.cfg ({served['pipeline'].split('benchmarks/work/')[-1]}; "
        "how long it trained changes none of these figures) through the package step as the workflow runs it "
        f"(benchmarks/modes/serving.py). Its wheel ({served['wheel_mb']:,.0f} MB, "
        f"built in {served['package_seconds']:.0f} s) installed into a fresh environment without the project, empty "
        f'caches: `import spacy` {first["import_seconds"]:.1f} s, `spacy.load("{first["package"]}")` '
        f"{first['load_seconds']:.1f} s, first prediction {first['first_prediction_seconds']:.2f} s, peak RSS "
        f"{first['peak_rss_mb']:,.0f} MB; it carries its int8 encoder: {'yes' if first['carries_int8'] else 'no'}, "
        f"predicted in {first['precision']}, export tools imported: "
        f"{', '.join(first['export_tools_imported']) or 'none'}, ONNX graphs in the caches afterwards: "
        f"{len(exported_graphs(first['cache_files']))} (files: {', '.join(first['cache_files']) or 'none'}).",
        "",
        f"`annotate` on the packaged pipeline ({served['pipeline_mb']:,.0f} MB on disk, int8 encoder included), "
        "empty caches. A worker may take its pipeline's size, the runtime's own memory (the peak of a process that "
        f"imports what the engine's workers import and loads nothing) and {served['worker_margin_mb']:,} MB for "
        "activations and arenas; an export on the way would add about ten times the encoder's size.",
        "",
        "| Engine | Workers | Seconds | Each worker's peak RSS MB | Allowed MB (pipeline + runtime + margin) "
        "| Driver peak RSS MB | Whole tree peak RSS MB | ONNX graphs in the caches |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for run in served["annotate"]:
        workers = ", ".join(f"{peak:,.0f}" for peak in run["worker_peak_rss_mb"])
        lines.append(
            f"| {run['engine']} | {run['workers']} | {run['seconds']:.1f} | {workers} | "
            f"{worker_allowance_mb(served, run):,.0f} | {run['driver_peak_rss_mb']:,.0f} | "
            f"{run['tree_peak_rss_mb']:,.0f} | {len(exported_graphs(run['cache_files']))} |"
        )
    return "\n".join(lines + remarks(served) + ratios_and_targets(served)) + "\n"

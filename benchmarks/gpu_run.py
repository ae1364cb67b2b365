"""The figures of a GPU run (benchmarks/gpu_run.sh on a lent GPU machine), read from the folder of files it
left, for benchmarks/results/results_gpu.json and BENCHMARKS.md's GPU section.

The run cannot write our results file itself: the GPU machine has no checkout to commit to and returns at
most 8 files, so its raw files are committed under benchmarks/results/gpu/<date>-<gpu>/ and this module derives the
figures from them: the kit's log (GPU, driver, torch, the check-gpu lines, each step's exit status and
output: lscpu, the kit's versions, the training plans), the training logs (updates, words, seconds at each
evaluation), the evaluation's metrics (device and precision), and, where they came back, steps.jsonl and
gpu.csv (peak GPU memory and utilization per step); the profile of training updates stays in the kit's log,
where it is read. Runs before 2026-12-03 left lscpu and the kit's versions as files of their own
(lscpu.txt, kit-versions.txt), which are read where they are.

    python benchmarks/run_benchmark.py gpu-results benchmarks/results/gpu/2026-11-27-h200
"""

import csv
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from common import remarks
from processes import PROJECT_DIR, RESULTS_DIR

RESULTS_PATH = RESULTS_DIR / "results_gpu.json"
RUN_COMMAND = "bash .devkit/gpu-run.sh bash benchmarks/gpu_run.sh"
# the steps of benchmarks/gpu_run.sh that describe the machine (read into the results' machine and versions),
# then those of the path under test (reported one by one), in its order
MACHINE_STEPS = ["lscpu", "kit_versions"]
STEPS = [
    "encoders",
    "data",
    "convert",
    "train_multilingual",
    "train_base",
    "evaluate",
    "profile_updates",
    "train_large",
    "package",
    "install",
    "predict_gpu",
    "predict_cpu",
]
# the training runs: the key of their log (train_log_<key>.jsonl), their step and their encoder
TRAINING_RUNS = [
    ("multilingual", "train_multilingual", "e5_small_size"),
    ("base", "train_base", "mbert_size"),
    ("large", "train_large", "xlmr_large_size"),
]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# the train step's plan, as scripts/train.py prints it (wrapped across lines)
UPDATES_PER_EPOCH = re.compile(r"\(([\d,]+) updates per epoch\)")


def read_kit_log(path: Path) -> Dict[str, Any]:
    """The GPU, driver, torch build, check-gpu lines and each step's command and exit status from the kit's
    log (gpu-run.log): its first line is nvidia-smi's `name, driver, memory`, its second torch's version."""
    lines = [ANSI.sub("", line) for line in path.read_text(encoding="utf8").splitlines()]
    gpu, driver, memory = (part.strip() for part in lines[0].split(","))
    torch_line = lines[1].split()
    # the kit runs check-gpu between its "== check-gpu" and "check-gpu exit" lines
    check_lines = lines[
        lines.index("== check-gpu") : next(i for i, x in enumerate(lines) if x.startswith("check-gpu exit"))
    ]
    checks = [
        {"status": line.split(None, 1)[0], "check": line.split(None, 1)[1]}
        for line in check_lines
        if re.match(r"^(ok|failed|skipped)\s", line)
    ]
    commands, exits, outputs, current = {}, {}, {}, None
    for line in lines:
        started = re.match(r"^== (\w+): (.*)$", line)
        ended = re.match(r"^== (\w+) exit (\d+)$", line)
        if started:
            current = started.group(1)
            commands[current], outputs[current] = started.group(2), []
        elif ended:
            exits[ended.group(1)] = int(ended.group(2))
            current = None
        elif current:
            outputs[current].append(line)
    return {
        "gpu": gpu,
        "gpu_memory_mib": int(memory.split()[0]),
        "driver": driver,
        "torch": torch_line[1],
        "cuda": torch_line[3],
        "checks": checks,
        "commands": commands,
        "exits": exits,
        "outputs": outputs,
    }


def training_figures(path: Path) -> Dict[str, Any]:
    """Speed of a training run from its JSONL log: between the first evaluation (step 0; spaCy's clock starts
    with the training loop, after loading and initializing) and the last, so the rates include the evaluations
    and leave out step 0's, which also carries the GPU's warm-up."""
    records = [json.loads(line) for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    first, last = records[0], records[-1]
    seconds = last["seconds"] - first["seconds"]
    return {
        "updates": last["step"],
        "words": last["words"],
        "evaluations": len(records),
        "step0_seconds": first["seconds"],
        "seconds_after_step0": seconds,
        "updates_per_second": round((last["step"] - first["step"]) / seconds, 2),
        "words_per_second": round((last["words"] - first["words"]) / seconds),
        "last_dev_f1": round(last["scores"]["ents_f"], 2),
    }


def parameter_counts(output: List[str]) -> Dict[str, int]:
    """`<name> <count> parameters ...` lines of the encoders step."""
    return {m.group(1): int(m.group(2)) for m in (re.match(r"^(\w+) (\d+) parameters", line) for line in output) if m}


def step_output(raw: Path, kit: Dict[str, Any], step: str, older_file: str) -> str:
    """What a step printed into the kit's log; for runs that left it as a file of its own, that file."""
    if (raw / older_file).is_file():
        return (raw / older_file).read_text(encoding="utf8")
    return "\n".join(kit["outputs"].get(step, []))


def updates_per_epoch(output: List[str]) -> Optional[int]:
    """The train step's planned updates per epoch, where its output holds the plan."""
    found = UPDATES_PER_EPOCH.search(" ".join(output))
    return int(found.group(1).replace(",", "")) if found else None


def cpu_description(lscpu: str) -> Dict[str, Any]:
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = set(fields.get("Flags", "").split())
    return {
        "cpu": fields["Model name"].strip(),
        "cores": int(fields["CPU(s)"]),
        "int8_dot_products": bool(flags & {"avx512_vnni", "amx_int8"}),
        "native_bfloat16": bool(flags & {"avx512_bf16", "amx_bf16"}),
    }


def gpu_usage_by_step(raw: Path) -> Dict[str, Dict[str, float]]:
    """Peak memory (MiB) and mean utilization (%) of the GPU during each step, where steps.jsonl and
    gpu.csv (`epoch seconds,memory MiB,utilization %` every 200 ms) came back."""
    if not (raw / "steps.jsonl").is_file() or not (raw / "gpu.csv").is_file():
        return {}
    with (raw / "gpu.csv").open(encoding="utf8") as samples_file:
        # a sample whose nvidia-smi call failed has empty fields
        rows = [row for row in csv.reader(samples_file) if len(row) == 3 and all(field.strip() for field in row)]
    samples = [(float(t), float(mem), float(util)) for t, mem, util in rows]
    usage = {}
    for line in (raw / "steps.jsonl").read_text(encoding="utf8").splitlines():
        step = json.loads(line)
        during = [(mem, util) for t, mem, util in samples if step["start"] <= t <= step["end"]]
        if during:
            usage[step["step"]] = {
                "peak_memory_mib": max(mem for mem, _ in during),
                "mean_utilization_percent": round(sum(util for _, util in during) / len(during)),
            }
    return usage


def kit_versions(pinned: str) -> Dict[str, str]:
    pins = dict(pin.split("==") for pin in pinned.split())
    return {name: pins[name] for name in ("spacy", "thinc", "spacy-transformers", "transformers") if name in pins}


def step_status(name: str, commands: Dict[str, str], exits: Dict[str, int]) -> str:
    if name not in commands:
        return "not run"
    if name not in exits:
        return "ended by the run's time limit"
    return {0: "ok", 124: "stopped by its time limit"}.get(exits[name], f"failed (exit {exits[name]})")


def collect(raw: Path, remarks: List[str]) -> Dict[str, Any]:
    kit = read_kit_log(raw / "gpu-run.log")
    check_line = next((c["check"] for c in kit["checks"] if c["check"].startswith("cupy")), "")
    cupy = re.search(r"cupy ([\d.]+)", check_line)
    metrics_path = raw / "metrics_base.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf8")) if metrics_path.is_file() else {}
    params = parameter_counts(kit["outputs"].get("encoders", []))
    training = {}
    for key, step, encoder in TRAINING_RUNS:
        if (raw / f"train_log_{key}.jsonl").is_file():
            figures = training_figures(raw / f"train_log_{key}.jsonl")
            per_epoch = updates_per_epoch(kit["outputs"].get(step, []))
            training[key] = {
                "encoder": encoder,
                "parameters": params.get(encoder),
                "command": kit["commands"][step],
                **figures,
                "updates_per_epoch": per_epoch,
                # at the run's rate, evaluations included: what a full epoch of its training file takes
                "minutes_per_epoch": round(per_epoch / figures["updates_per_second"] / 60, 1) if per_epoch else None,
            }
    return {
        "command": RUN_COMMAND,
        "date": raw.name[:10],
        "raw_files": str(raw.relative_to(PROJECT_DIR) if raw.is_relative_to(PROJECT_DIR) else raw),
        "machine": {
            "gpu": kit["gpu"],
            "gpu_memory_mib": kit["gpu_memory_mib"],
            "driver": kit["driver"],
            **cpu_description(step_output(raw, kit, "lscpu", "lscpu.txt")),
        },
        "versions": {
            "torch": kit["torch"],
            "cuda": kit["cuda"],
            **({"cupy": cupy.group(1)} if cupy else {}),
            **kit_versions(step_output(raw, kit, "kit_versions", "kit-versions.txt")),
        },
        "checks": kit["checks"],
        "steps": [
            {
                "step": name,
                "command": kit["commands"].get(name, ""),
                "status": step_status(name, kit["commands"], kit["exits"]),
            }
            for name in STEPS
        ],
        "training": training,
        "evaluation": {split: scores["runtime"] for split, scores in metrics.items()},
        "gpu_usage": gpu_usage_by_step(raw),
        # the profile_updates step's timing lines (one per batch size); its profile stays in the raw log
        "update_timing": [line for line in kit["outputs"].get("profile_updates", []) if "s per update without" in line],
        "remarks": remarks,
    }


def report_markdown(results: Dict[str, Any]) -> str:
    machine, versions = results["machine"], results["versions"]
    lines = [
        "## The GPU path (`benchmarks/gpu_run.sh`, on a lent GPU)",
        "",
        f"Command: `{results['command']}` (raw files: `{results['raw_files']}`)  ",
        f"Date: {results['date']}  ",
        f"Machine: {machine['gpu']} ({machine['gpu_memory_mib']:,} MiB), driver {machine['driver']}; "
        f"{machine['cpu']}, {machine['cores']} cores  ",
        "Versions: " + ", ".join(f"{name} {v}" for name, v in versions.items()),
        "",
        "Encoders with random weights of real sizes (no hub on that machine): speed and memory are real, "
        "accuracy is not, so the F1 below only shows that the pipeline learns.",
        "",
        "`spacy project run check-gpu .`:",
        "",
        "| Check | Result |",
        "|---|---|",
        *(f"| {c['check']} | {c['status']} |" for c in results["checks"]),
        "",
        "| Step | Command | Result |",
        "|---|---|---|",
        *(
            f"| {s['step']} | {'`' + s['command'] + '`' if s['command'] else ''} | {s['status']} |"
            for s in results["steps"]
        ),
        "",
    ]
    if results["training"]:
        lines += [
            "| Training run | Parameters | Updates | Evaluations | Step 0 done at (s) | Updates/s | Words/s "
            "| Minutes per epoch | Dev F1 (random weights) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *(
                f"| {t['encoder']} | {t['parameters'] or 0:,} | {t['updates']} | {t['evaluations']} | "
                f"{t['step0_seconds']} | {t['updates_per_second']} | {t['words_per_second']:,} | "
                f"{t['minutes_per_epoch'] or ''} | {t['last_dev_f1']} |"
                for t in results["training"].values()
            ),
            "",
            "Updates/s and words/s run from the evaluation at step 0 to the last, so they include the dev "
            "evaluations and leave out loading, initializing and step 0 (spaCy's clock starts with the training loop). "
            "Minutes per epoch: the train step's planned updates per epoch of the whole training file at that rate.",
            "",
        ]
        if "multilingual" in results["training"]:
            lines += [
                "e5_small_size is multilingual-e5-small's size, trained with the documented Spanish command's recipe "
                "for small encoders (frozen word embeddings, layer-wise rate decay), so its minutes per epoch are "
                "about that command's on this GPU (its tokenizer is a WordPiece one built on the data, not the real "
                "SentencePiece one).",
                "",
            ]
    if results["evaluation"]:
        splits = results["evaluation"].items()
        lines += [
            "Evaluation: " + ", ".join(f"{split} on {r['device']} in {r['precision']}" for split, r in splits) + ".",
            "",
        ]
    if results["update_timing"]:
        lines += ["Training updates of the base pipeline, timed apart from the run:", ""]
        lines += [f"- {line}" for line in results["update_timing"]] + [""]
    if results["gpu_usage"]:
        lines += [
            "| Step | Peak GPU memory (MiB) | Mean GPU utilization |",
            "|---|---:|---:|",
            *(
                f"| {step} | {u['peak_memory_mib']:,.0f} | {u['mean_utilization_percent']}% |"
                for step, u in results["gpu_usage"].items()
            ),
            "",
        ]
    return "\n".join(lines + remarks(results)) + "\n"

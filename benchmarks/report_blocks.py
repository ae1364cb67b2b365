"""Blocks of text that every benchmark report renders the same way, and
the machine and versions that every results file records."""

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Dict, List

from conll_ner.pipeline.cpu_features import cpu_computes_bfloat16, cpu_computes_int8


def remarks(results: Dict[str, Any]) -> List[str]:
    """What was seen during a run that its figures do not show, recorded in
    its results file under `remarks` (by whoever ran it: the harness cannot
    know that the machine was shared, say)."""
    return (
        ["", "Remarks on this run:", ""] + [f"- {remark}" for remark in results.get("remarks", [])]
        if results.get("remarks")
        else []
    )


# what the CPU computes natively: training and inference speeds depend on it
# as much as on the number of cores
CPU_FEATURES = (("native_bfloat16", "native bfloat16"), ("int8_dot_products", "int8 dot products (VNNI or AMX)"))


def cpu_features(machine: Dict[str, Any]) -> str:
    """The CPU's features, as far as the run recorded them (older runs
    recorded bfloat16 only)."""
    return ", ".join(f"{name}: {'yes' if machine[key] else 'no'}" for key, name in CPU_FEATURES if key in machine)


def machine_line(machine: Dict[str, Any]) -> str:
    """A report's Machine line."""
    features = cpu_features(machine)
    return f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['platform']}" + (
        f", {features}  " if features else "  "
    )


def machine() -> Dict[str, Any]:
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "native_bfloat16": cpu_computes_bfloat16(),
        "int8_dot_products": cpu_computes_int8(),
    }


def versions() -> Dict[str, str]:
    found = {}
    for name in ("spacy", "spacy-transformers", "transformers", "torch", "datasets", "seqeval", "accelerate"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found

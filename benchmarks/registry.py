"""The mode registry: which module of benchmarks/modes/ a mode of modes.json
runs (modes/__init__.py says what a mode module has)."""

import json
from types import ModuleType
from typing import Any, Dict

from common import avx2_only
from modes import (
    annotate,
    distill,
    distill_scale,
    encoder_graphs,
    full,
    inference,
    long,
    serving,
    serving_http,
    update_cost,
)
from processes import BENCH_DIR

MODES = {
    "full": full,
    "long": long,
    "distill": distill,
    "distill_scale": distill_scale,
    "annotate": annotate,
    "inference": inference,
    "serving": serving,
    "serving_http": serving_http,
    "update_cost": update_cost,
    "encoder_graphs": encoder_graphs,
}


def kind(mode: str) -> str:
    """The module a mode of modes.json runs: the longest name of MODES that
    starts it (distill_scale_quick is distill_scale's, not distill's); the
    full mode's otherwise (its quick check is `quick`)."""
    return max((name for name in MODES if mode.startswith(name)), key=len, default="full")


def is_check(mode: str) -> bool:
    """A quick check writes into the work folder only, not the results files."""
    return mode == "quick" or mode.endswith("_quick")


def module(mode: str) -> ModuleType:
    return MODES[kind(mode)]


# the key suffix of a mode's run on an AVX2-only CPU, where its module's
# figures depend on the CPU kind (modes/__init__.py: BY_CPU_KIND)
AVX2_ONLY_SUFFIX = "_avx2"


def kept_by_cpu_kind(mode: str) -> bool:
    """A mode whose module's figures depend on the CPU kind, unless its
    kernel caps make it one kind's approximation already."""
    return getattr(module(mode), "BY_CPU_KIND", False) and not SETTINGS[mode].get("kernel_caps")


def results_key(mode: str, machine: Dict[str, Any]) -> str:
    """Where results.json keeps a mode's run: under the mode's name, and for
    a mode whose figures depend on the CPU kind, run on an AVX2-only CPU,
    under the name with AVX2_ONLY_SUFFIX, so that the runs of both kinds
    stay side by side and one command measures whatever CPU it is given."""
    return mode + AVX2_ONLY_SUFFIX if kept_by_cpu_kind(mode) and avx2_only(machine) else mode


# Settings of each mode (benchmarks/modes.json)
SETTINGS = json.loads((BENCH_DIR / "modes.json").read_text())
# modes whose results results.json keeps under a key of their own: each mode
# of modes.json (quick checks aside) whose module has a key, under its name,
# and under its AVX2-only name where it is kept by CPU kind
NAMED_MODES = tuple(
    mode for mode in SETTINGS if not mode.startswith("_") and not is_check(mode) and module(mode).RESULTS_KEY
)
KEYED_MODES = NAMED_MODES + tuple(mode + AVX2_ONLY_SUFFIX for mode in NAMED_MODES if kept_by_cpu_kind(mode))

"""The mode registry: which module of benchmarks/modes/ a mode of modes.json
runs (modes/__init__.py says what a mode module has)."""

import json
from types import ModuleType

from modes import (
    annotate,
    distill,
    distill_scale,
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


# Settings of each mode (benchmarks/modes.json)
SETTINGS = json.loads((BENCH_DIR / "modes.json").read_text())
# modes whose results results.json keeps under a key of their own: each mode
# of modes.json (quick checks aside) whose module has a key, under its name
KEYED_MODES = tuple(
    mode for mode in SETTINGS if not mode.startswith("_") and not is_check(mode) and module(mode).RESULTS_KEY
)

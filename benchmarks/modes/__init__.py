"""The harness's modes, one module each: `spacy project run benchmark
benchmarks --vars.mode NAME` runs the module that MODES names, with the
settings that benchmarks/modes.json gives NAME.

A mode module has
- `run(data_dir, work, settings)`: every part of the mode, its results
  (ratios and targets included) as a dict; run_benchmark.py adds the
  command, date, commit, machine, versions and settings;
- `report_markdown(results, ...)`: its section of BENCHMARKS.md
  (benchmarks/report.py puts the sections in their order);
- `RESULTS_FILE` and `RESULTS_KEY`: the file in benchmarks/results/ that
  keeps its latest results, and the key it has there (None: the file is its
  own, or, for the full mode, results.json's top level);
- optionally `curve_name(mode)` and `plot_learning_curves(results, path)`:
  a PNG beside its results.

A mode's quick check (`<name>_quick`, and `quick` for `full`) runs the same
module on a slice, into benchmarks/work/<mode>/ only.
"""

from types import ModuleType

from modes import (
    annotate,
    distill,
    distill_scale,
    full,
    inference,
    long,
    multilingual,
    serving,
    serving_http,
    update_cost,
)

MODES = {
    "full": full,
    "long": long,
    "distill": distill,
    "distill_scale": distill_scale,
    "annotate": annotate,
    "inference": inference,
    "serving": serving,
    "serving_http": serving_http,
    "multilingual": multilingual,
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

"""The harness's modes, one module each: `spacy project run benchmark
benchmarks --vars.mode NAME` runs the module that registry.MODES names,
with the settings that benchmarks/modes.json gives NAME.

A mode module has
- `run(data_dir, work, settings)`: every part of the mode, its results
  (ratios and targets included) as a dict; run_benchmark.py adds the
  command, date, commit, machine, versions and settings;
- `report_markdown(results, ...)`: its section of BENCHMARKS.md
  (benchmarks/report.py puts the sections in their order);
- `RESULTS_FILE` and `RESULTS_KEY`: the file in benchmarks/results/ that
  keeps its latest results, and the key it has there (None: the file is its
  own, or, for the full mode, results.json's top level);
- optionally `BY_CPU_KIND = True`: its figures depend on the CPU's int8
  and bfloat16 kernels, so a run on an AVX2-only CPU is kept under
  `<mode>_avx2` beside the newer kind's run (registry.results_key);
- optionally `curve_name(mode)` and `plot_learning_curves(results, path)`:
  a PNG beside its results.

A mode's quick check (`<name>_quick`, and `quick` for `full`) runs the same
module on a slice, into benchmarks/work/<mode>/ only.
"""

"""Report blocks every benchmark report renders the same way: the Machine
line and the README table name what each run's CPU computes natively."""

import copy

import common
import readme_table
from common import cpu_features, machine_line

from conll_ner.pipeline.cpu_features import KERNEL_CAP_VARIABLES

MACHINE = {"cpu": "AMD EPYC", "cores": 2, "platform": "Linux", "native_bfloat16": False, "int8_dot_products": True}


def test_machine_line_names_the_recorded_cpu_features_only():
    assert machine_line(MACHINE) == (
        "Machine: AMD EPYC, 2 cores, Linux, native bfloat16: no, int8 dot products (VNNI or AMX): yes  "
    )
    older = {key: value for key, value in MACHINE.items() if key != "int8_dot_products"}  # recorded bfloat16 only
    assert cpu_features(older) == "native bfloat16: no"
    assert machine_line({"cpu": "x", "cores": 4, "platform": "p"}) == "Machine: x, 4 cores, p  "


def test_readme_table_says_what_each_runs_cpu_computes():
    results = readme_table.read_results()
    long = copy.deepcopy(results["long"])
    long["machine"] = MACHINE
    caption = readme_table.results_table(results["full"], long).splitlines()[0]
    assert "`long`: native bfloat16: no, int8 dot products (VNNI or AMX): yes" in caption
    assert f"`full`: {cpu_features(results['full']['machine'])}" in caption


def test_a_run_under_kernel_caps_records_them_and_is_a_cpu_kind_of_its_own(monkeypatch):
    """Capped at AVX2 on a CPU with AVX512-BF16, a run computes as an AVX2
    CPU would: its record says so, and its CPU kind is not the uncapped one."""
    for name in KERNEL_CAP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    uncapped = common.machine()
    assert "kernel_caps" not in uncapped
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    capped = common.machine()
    assert capped["kernel_caps"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"} and capped["native_bfloat16"] is False
    assert cpu_features(capped).endswith("kernels capped: ONEDNN_MAX_CPU_ISA=AVX2")
    bfloat16_cpu = {**capped, "x86_flags": ["avx2", "avx512f", "avx512_bf16"]}
    assert common.cpu_kind(bfloat16_cpu).endswith("(AVX512-BF16, no AMX; kernels capped: ONEDNN_MAX_CPU_ISA=AVX2)")
    assert common.cpu_kind(bfloat16_cpu) != common.cpu_kind({**bfloat16_cpu, "kernel_caps": {}})


def test_the_readme_adds_the_avx2_only_inference_run_in_words_of_its_own():
    """The table's speeds are one CPU kind's; a run of the inference mode on
    an AVX2-only CPU is added below it, with its own CPU features, and is
    absent where there is none."""
    results = readme_table.read_results()
    full = copy.deepcopy(results["full"])
    avx2_machine = {**MACHINE, "int8_dot_products": False, "x86_flags": ["avx2"]}
    full["inference_avx2"] = {**copy.deepcopy(full["inference"]), "machine": avx2_machine}
    ours = next(row for row in full["inference_avx2"]["ours"] if row["variant"] == full["inference"]["default"])
    ours["words_per_second"]["raw_text"] = 1234.0
    table = readme_table.results_table(full, results["long"])
    line = table.splitlines()[-1]
    assert line.startswith(
        "On an AVX2-only CPU (native bfloat16: no, int8 dot products (VNNI or AMX): no, x86 flags: avx2;"
    )
    assert f"ours ({full['inference']['default']}) 1,234 words/s" in line
    del full["inference_avx2"]
    assert "AVX2-only" not in readme_table.results_table(full, results["long"])

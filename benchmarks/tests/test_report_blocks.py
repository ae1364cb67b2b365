"""Report blocks every benchmark report renders the same way: the Machine
line and the README table name what each run's CPU computes natively."""

import copy

import readme_table
from common import cpu_features, machine_line

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

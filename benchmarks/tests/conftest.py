"""The harness's tests: the harness's modules import as its scripts import
them (its folder on the path), and the product's test helpers (tiny
encoders and pipelines, the quirky CoNLL fixtures, saved served pipelines)
are the same ones the product's tests use, from tests/."""

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
# the project the harness measures (the name the product's test helpers use too)
PROJECT_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

sys.path.insert(0, str(PROJECT_DIR / "tests"))
sys.path.insert(0, str(BENCH_DIR))

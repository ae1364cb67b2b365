"""The harness's tests import its modules as its scripts import them (its
folder on the path; pytest puts it there for this package too), and the
product's test helpers (tiny encoders and pipelines, the quirky CoNLL
fixtures, saved served pipelines) are the ones the product's tests use,
from tests/."""

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
sys.path.insert(0, str(BENCH_DIR))

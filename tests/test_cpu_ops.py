import numpy
import pytest
import spacy
from spacy.util import load_config, load_model_from_config
from thinc.api import NumpyOps, get_current_ops, set_current_ops

from conftest import PROJECT_DIR


@pytest.fixture
def blis_ops():
    previous = get_current_ops()
    set_current_ops(NumpyOps(use_blis=True))
    yield
    set_current_ops(previous)


@pytest.mark.parametrize("config", ["cnn", "transformer", "transformer_large"])
def test_creating_a_pipeline_switches_cpu_ops_to_numpy_blas(blis_ops, config):
    assert get_current_ops().use_blis
    cfg = load_config(PROJECT_DIR / "configs" / f"{config}.cfg")
    if config != "cnn":  # building the transformer would need a checkpoint
        cfg["components"] = {}
        cfg["nlp"]["pipeline"] = []
    load_model_from_config(cfg, auto_fill=True, validate=False)
    ops = get_current_ops()
    assert type(ops) is NumpyOps and not ops.use_blis


def test_numpy_matmul_gives_the_same_products(blis_ops):
    a, b = numpy.random.rand(50, 40).astype("f"), numpy.random.rand(40, 30).astype("f")
    numpy.testing.assert_allclose(NumpyOps(use_blis=False).gemm(a, b), NumpyOps(use_blis=True).gemm(a, b), rtol=1e-5)

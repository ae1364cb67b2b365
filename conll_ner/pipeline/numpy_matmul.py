"""Faster CPU matrix products for every pipeline: through numpy (multi-threaded
BLAS) instead of blis.

thinc's CPU ops multiply matrices with blis on one thread. On the 2-core
benchmark machine the CNN pipeline spent ~80% of its inference time in that
gemm (cProfile), and numpy's BLAS made the whole pipeline 3.7x faster
(2,900 -> 10,800 words/s). The configs name it as [nlp] before_creation; as
thinc's ops are the process's, it switches the current ops, CPU only, from
blis to numpy's gemm, which computes the same products.
"""

from typing import Callable

from spacy.util import registry
from thinc.api import NumpyOps, get_current_ops, set_current_ops


@registry.callbacks("conll_ner.numpy_matmul_on_cpu.v1")
def create_numpy_matmul_on_cpu() -> Callable[[type], type]:
    def use_numpy_matmul(lang_cls: type) -> type:
        ops = get_current_ops()
        if type(ops) is NumpyOps and ops.use_blis:
            set_current_ops(NumpyOps(use_blis=False))
        return lang_cls

    return use_numpy_matmul

"""Faster CPU matrix products: through numpy (multi-threaded BLAS) instead of
blis.

thinc's CPU ops multiply matrices with blis on one thread, where the CNN
pipeline spent most of its inference time; numpy's BLAS uses every core and
computes the same products (measured: docs/decisions.md).

v2, the configs' [nlp] after_pipeline_creation, gives the layers of this
pipeline's components numpy's ops and changes nothing else in the process.
v1 is named by pipelines trained before it, as [nlp] before_creation: it
switches thinc's current ops for the whole process, as it always did.
"""

from typing import Callable

from spacy.language import Language
from spacy.util import registry
from thinc.api import Model, NumpyOps, get_current_ops, set_current_ops


def _blis_ops(ops: object) -> bool:
    return type(ops) is NumpyOps and ops.use_blis


@registry.callbacks("conll_ner.numpy_matmul_on_cpu.v2")
def create_numpy_matmul_in_pipeline() -> Callable[[Language], Language]:
    def use_numpy_matmul(nlp: Language) -> Language:
        numpy_ops = NumpyOps(use_blis=False)
        for _, component in nlp.pipeline:
            model = getattr(component, "model", None)
            if isinstance(model, Model):
                for node in model.walk():
                    if _blis_ops(node.ops):  # CPU only: GPU ops are left alone
                        node.ops = numpy_ops
        return nlp

    return use_numpy_matmul


@registry.callbacks("conll_ner.numpy_matmul_on_cpu.v1")
def create_numpy_matmul_on_cpu() -> Callable[[type], type]:
    def use_numpy_matmul(lang_cls: type) -> type:
        if _blis_ops(get_current_ops()):
            set_current_ops(NumpyOps(use_blis=False))
        return lang_cls

    return use_numpy_matmul

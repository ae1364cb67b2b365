"""Where and in what precision a pipeline predicts, here and now: what every
score the project writes names, and the shims that say it."""

from typing import Any, Dict, List

from spacy.language import Language
from thinc.api import Model, NumpyOps, get_current_ops

from .cpu_shim import CPUTransformerShim
from .library_internals import shim_mixed_precision


def transformer_shims(nlp: Language) -> List[Any]:
    """The PyTorch shims of the pipeline's components."""
    return [
        shim
        for _, component in nlp.pipeline
        if isinstance(getattr(component, "model", None), Model)
        for node in component.model.walk()
        for shim in node.shims
    ]


def prediction_runtime(nlp: Language) -> Dict[str, str]:
    """{"device": "cpu" or "gpu", "precision": ...}. A pipeline without a
    transformer, or with spacy-transformers' own shim, computes in fp32
    (float16 with mixed precision on a GPU)."""
    device = "cpu" if isinstance(get_current_ops(), NumpyOps) else "gpu"
    precisions = {shim.precision() for shim in transformer_shims(nlp) if isinstance(shim, CPUTransformerShim)}
    if not precisions:
        mixed = any(shim_mixed_precision(shim) for shim in transformer_shims(nlp))
        precisions = {"fp16 (mixed)" if mixed and device == "gpu" else "fp32"}
    return {"device": device, "precision": ", ".join(sorted(precisions))}

"""The callbacks named by the configs of pipelines trained before
conll_ner.TransformerModel.v1, whose CPU runtime changed the classes of
built shims. They now change nothing, so such pipelines still load: they
predict as spacy-transformers does (fp32 on the CPU) and say how to get the
CPU runtime.

spacy-transformers is imported where available: packaged CNN pipelines carry
this module too and need it not.
"""

from typing import Callable

from spacy.language import Language
from spacy.util import registry

from .notices import say_once
from .prediction_runtime import transformer_shims

try:
    from spacy_transformers.layers.hf_shim import HFShim
except ImportError:  # a CNN pipeline's environment
    HFShim = None


@registry.callbacks("conll_ner.transformer_on_cpu.v1")
def create_transformer_on_cpu(
    training: bool = True, int8: bool = True, token_budget: int = 1024
) -> Callable[[Language], Language]:
    """The CPU runtime of pipelines before conll_ner.TransformerModel.v1:
    now it only says how to migrate."""

    def say_how_to_migrate(nlp: Language) -> Language:
        if any(type(shim) is HFShim for shim in transformer_shims(nlp)):
            say_once(
                "this pipeline's config names conll_ner.transformer_on_cpu.v1, the CPU runtime of pipelines before "
                "conll_ner.TransformerModel.v1: it predicts in fp32 with torch. In this project, "
                "`python scripts/int8.py <pipeline>` gives it the CPU runtime and its int8 encoder "
                "(docs/cpu-inference.md)"
            )
        return nlp

    return say_how_to_migrate


@registry.callbacks("conll_ner.bfloat16_transformer_on_cpu.v1")
def create_bfloat16_transformer_on_cpu(
    training: bool = True, token_budget: int = 1024
) -> Callable[[Language], Language]:
    """The same, for pipelines trained before int8 predictions."""
    return create_transformer_on_cpu(training=training, int8=False, token_budget=token_budget)

"""The architecture `conll_ner.TransformerModel.v1`: spacy-transformers'
`TransformerModel.v3` (same arguments, layers and weights) whose Hugging Face
shim is CPUTransformerShim (conll_ner/pipeline/cpu_shim.py), so the CPU
runtime's settings live in the config ([components.transformer.model] cpu_*
and freeze_word_embeddings_above) and nothing outside the pipeline changes.
GPUs are left as spacy-transformers runs them.

The shim takes the place of the one spacy-transformers' HFWrapper built,
where spacy-transformers itself reaches it (`layers[0].shims[0]`);
tests/test_library_structure.py asserts that structure.

spacy-transformers is imported where available: packaged CNN pipelines carry
this module too and need it not.
"""

from typing import Any, Callable, Dict, Optional

from spacy.util import registry
from thinc.api import Model, NumpyOps, get_current_ops

from .cpu_shim import CPUTransformerShim
from .int8_encoder import EXTRA_OUTPUTS

try:
    from spacy_transformers.data_classes import HFObjects
    from spacy_transformers.layers.transformer_model import TransformerModel
except ImportError:  # a CNN pipeline's environment
    pass


# transformers' attention implementations that run on the CPU
CPU_ATTENTION = ("eager", "sdpa")


@registry.architectures("conll_ner.TransformerModel.v1")
def create_transformer_model(
    name: str,
    get_spans: Callable,
    tokenizer_config: Optional[Dict[str, Any]] = None,
    transformer_config: Optional[Dict[str, Any]] = None,
    mixed_precision: bool = False,
    grad_scaler_config: Optional[Dict[str, Any]] = None,
    cpu_int8: bool = True,
    cpu_bfloat16: bool = True,
    cpu_token_budget: int = 1024,
    freeze_word_embeddings_above: int = 100_000,
    cpu_attention: str = "eager",
) -> "Model":
    """`spacy-transformers.TransformerModel.v3` with the CPU runtime.
    cpu_int8: predict through the pipeline's int8 encoder where it has one
    (built by the package step) and onnxruntime is installed, on any x86
    CPU. cpu_bfloat16: otherwise predict, and always train, under bfloat16
    autocast where the CPU computes it natively (false: fp32).
    cpu_token_budget: tokens per encoder call, int8 in groups of windows of
    one length, torch in groups of windows of similar length (padded tokens
    counted); 0: one call per batch (int8: one per length).
    freeze_word_embeddings_above: train with frozen word embeddings when the
    vocabulary has more rows than this (on any device; 0: always frozen).
    cpu_attention: how an encoder loaded from its checkpoint on the CPU
    computes attention (transformers' `attn_implementation`): "eager",
    plain products and softmax, or "sdpa", torch's
    scaled_dot_product_attention (transformers' default, and what GPUs
    keep). In training with attention dropout, torch's CPU SDPA takes its
    unfused reference path, which is slower than eager attention's products
    (measured by the update_cost benchmark mode; docs/decisions.md). A
    transformer_config that names attn_implementation wins on every device.
    Refuses a transformer_config that asks for outputs the int8 graph lacks,
    unless cpu_int8 is false. mixed_precision is for GPUs: on the CPU thinc's
    grad scaler raises, so the shim is built without it there."""
    tokenizer_config, transformer_config = dict(tokenizer_config or {}), dict(transformer_config or {})
    grad_scaler_config = dict(grad_scaler_config or {})
    asked = [key for key in EXTRA_OUTPUTS if transformer_config.get(key)]
    if cpu_int8 and asked:
        raise ValueError(
            f"[components.transformer.model] transformer_config asks for {', '.join(asked)}, which the int8 "
            "encoder does not compute (it returns the last hidden state only): set cpu_int8 = false to predict "
            "them with torch on the CPU"
        )
    if cpu_attention not in CPU_ATTENTION:
        raise ValueError(
            f"[components.transformer.model] cpu_attention = {cpu_attention!r}: use one of {', '.join(CPU_ATTENTION)}"
        )
    on_cpu = isinstance(get_current_ops(), NumpyOps)
    mixed_precision = mixed_precision and not on_cpu  # thinc's grad scaler raises on the CPU
    if on_cpu:
        transformer_config.setdefault("attn_implementation", cpu_attention)
    model = TransformerModel(
        name,
        get_spans,
        tokenizer_config,
        transformer_config,
        mixed_precision=mixed_precision,
        grad_scaler_config=dict(grad_scaler_config),
    )
    shim = CPUTransformerShim(
        HFObjects(None, None, None, dict(tokenizer_config), dict(transformer_config)),
        mixed_precision=mixed_precision,
        grad_scaler_config=dict(grad_scaler_config),
        int8=cpu_int8,
        bfloat16=cpu_bfloat16,
        token_budget=cpu_token_budget,
        freeze_word_embeddings_above=freeze_word_embeddings_above,
    )
    model.layers[0].shims[0] = shim  # the HFWrapper's HFShim, not yet given a transformer
    return model

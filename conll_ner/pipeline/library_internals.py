"""The private attributes of spaCy's libraries that the CPU runtime and the
int8 build read or set, in one place: each is a detail of one library's
version, not its API, and tests/test_library_structure.py asserts every one
of them (and the structure of spacy-transformers' wrapper that
conll_ner.TransformerModel.v1 builds on), so that an upgrade which moves one
fails a test instead of predicting wrongly.

Checked against spacy-transformers 1.4.0, thinc 8.3.14, transformers 4.53.2
and torch 2.13, inside the ranges requirements.txt pins (spacy-transformers
1.4.x, thinc 8.3.x through spaCy 3.8, transformers <4.53.3).

torch is imported where available: packaged CNN pipelines carry this module
too and need neither it nor spacy-transformers.
"""

from typing import Any

try:
    import torch
except ImportError:  # a CNN pipeline's environment
    torch = None


def torch_model(shim: Any) -> Any:
    """The torch module a thinc PyTorchShim wraps (`Shim._model`)."""
    return shim._model


def shim_mixed_precision(shim: Any) -> bool:
    """Whether a thinc PyTorchShim runs under CUDA autocast
    (`PyTorchShim._mixed_precision`); False for a shim without it."""
    return bool(getattr(shim, "_mixed_precision", False))


def shim_grad_scaling(shim: Any) -> bool:
    """Whether a thinc PyTorchShim scales its gradients
    (`PyTorchShim._grad_scaler`, `PyTorchGradScaler._enabled`)."""
    return bool(shim._grad_scaler._enabled)


def use_eager_attention(hf_config: Any) -> None:
    """Make a Hugging Face model built from this config compute attention as
    plain matrix products and softmax (`PretrainedConfig._attn_implementation`),
    the pattern ONNX Runtime's optimizer fuses."""
    hf_config._attn_implementation = "eager"


def torch_cpu_has(*checks: str) -> bool:
    """Any of torch.cpu's private CPU feature checks (`_is_vnni_supported`,
    ...); False where torch is absent or lacks the check."""
    return torch is not None and any(getattr(torch.cpu, check, lambda: False)() for check in checks)

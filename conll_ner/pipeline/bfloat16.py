"""bfloat16 on the CPU: torch's autocast, and its outputs cast back.

CPUs with AVX512-BF16 or AMX multiply bfloat16 faster than fp32, and it keeps
fp32's exponent range, so training needs no grad scaling; weights, gradients
and the optimizer stay fp32. thinc's shims autocast on CUDA only, so the
shim does it on the CPU (the evidence: docs/decisions.md).

torch is imported where available: packaged CNN pipelines carry this module
too and need it not.
"""

from typing import Any

try:
    import torch
except ImportError:  # a CNN pipeline's environment
    torch = None


def bfloat16_autocast() -> Any:
    """The context in which a CPU forward pass computes in bfloat16; the
    backward pass follows the casts it recorded."""
    return torch.autocast("cpu", dtype=torch.bfloat16)


def outputs_as_float32(outputs: Any) -> Any:
    """A Hugging Face output (or tensor, or tuple) with its bfloat16 tensors
    cast to float32: thinc hands them to numpy, which has no bfloat16. The
    cast is differentiable, so gradients reach the encoder through it."""
    if isinstance(outputs, dict):  # Hugging Face ModelOutput
        for key, value in list(outputs.items()):
            outputs[key] = _as_float32(value)
        return outputs
    return _as_float32(outputs)


def _as_float32(value: Any) -> Any:
    if torch.is_tensor(value) and value.dtype == torch.bfloat16:
        return value.float()
    if isinstance(value, tuple):
        return tuple(_as_float32(item) for item in value)
    return value

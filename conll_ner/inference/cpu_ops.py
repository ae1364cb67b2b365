"""Faster CPU inference: matrix products through numpy (multi-threaded BLAS),
and transformers in bfloat16 where the CPU computes it natively.

thinc's CPU ops multiply matrices with blis on one thread. On the 2-core
benchmark machine the CNN pipeline spent ~80% of its inference time in that
gemm (cProfile), and numpy's BLAS made the whole pipeline 3.7x faster
(2,900 -> 10,800 words/s). GPU ops are left alone. Like the scorer, this
module imports nothing from the rest of the project, so that it can travel
inside packaged pipelines: it runs every time a pipeline is created or loaded.

A transformer's forward pass is ~93% of the transformer pipeline's CPU time
(cProfile), nearly all of it fp32 matrix products. CPUs with AVX512-BF16 or
AMX multiply bfloat16 2-2.5x faster; thinc's shims only autocast on CUDA, so
`conll_ner.bfloat16_transformer_on_cpu.v1` autocasts the transformer on the
CPU: its predictions, and by default its training steps, the CPU's
counterpart of the mixed precision the configs ask for on GPUs. bfloat16
keeps fp32's exponent range, so it needs no grad scaling; weights, gradients
and the optimizer stay fp32. On all-MiniLM-L6-v2 training updates ran 1.31x
faster (3.09 vs 2.35 updates/s on 2 cores, 60 updates side by side), with
losses within 0.05% of fp32's.
"""
from typing import Any, Callable, Dict, Tuple

from spacy.language import Language
from spacy.util import registry
from thinc.api import Model, NumpyOps, get_current_ops, set_current_ops
from thinc.shims import PyTorchGradScaler, PyTorchShim

try:  # CNN pipelines are packaged with this module and do not need torch
    import torch
except ImportError:
    torch = None


@registry.callbacks("conll_ner.numpy_matmul_on_cpu.v1")
def create_numpy_matmul_on_cpu() -> Callable[[type], type]:
    def use_numpy_matmul(lang_cls: type) -> type:
        ops = get_current_ops()
        if type(ops) is NumpyOps and ops.use_blis:
            set_current_ops(NumpyOps(use_blis=False))
        return lang_cls

    return use_numpy_matmul


def cpu_computes_bfloat16() -> bool:
    """True where bfloat16 matrix products have hardware support; elsewhere
    torch emulates them, slower than fp32."""
    if torch is None:
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def as_float32(value: Any) -> Any:
    """Cast bfloat16 outputs back: thinc hands them to numpy, which has no bfloat16."""
    if torch.is_tensor(value) and value.dtype == torch.bfloat16:
        return value.float()
    if isinstance(value, tuple):
        return tuple(as_float32(item) for item in value)
    return value


def outputs_as_float32(outputs: Any) -> Any:
    if isinstance(outputs, dict):  # Hugging Face ModelOutput
        for key, value in list(outputs.items()):
            outputs[key] = as_float32(value)
        return outputs
    return as_float32(outputs)


class BFloat16PredictOnCPU:
    """Shim mixin: predict under CPU bfloat16 autocast; GPU predictions and
    training steps are unchanged."""

    def predict(self, inputs: Any) -> Any:
        if self.device.type != "cpu":
            return super().predict(inputs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return outputs_as_float32(super().predict(inputs))


class BFloat16TrainOnCPU(BFloat16PredictOnCPU):
    """Shim mixin: training steps under CPU bfloat16 autocast too. Autocast
    covers the forward pass only, as on CUDA; the backward pass follows the
    recorded casts, and the cast of the outputs to fp32 is part of the graph,
    so thinc's fp32 gradients flow back through it."""

    def begin_update(self, inputs: Any) -> Any:
        if self.device.type != "cpu":
            return super().begin_update(inputs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs, backprop = super().begin_update(inputs)
        return outputs_as_float32(outputs), backprop


_BFLOAT16_SHIM_CLASSES: Dict[Tuple[type, type], type] = {}


def bfloat16_shim_class(shim_class: type, mixin: type) -> type:
    """The shim class with a bfloat16 mixin, one per pair. Swapping the
    class of the shim object keeps working after `from_disk`, which loads new
    weights into the same shim, and through deep copies."""
    key = (shim_class, mixin)
    if key not in _BFLOAT16_SHIM_CLASSES:
        _BFLOAT16_SHIM_CLASSES[key] = type(f"{mixin.__name__}{shim_class.__name__}", (mixin, shim_class), {})
    return _BFLOAT16_SHIM_CLASSES[key]


@registry.callbacks("conll_ner.bfloat16_transformer_on_cpu.v1")
def create_bfloat16_transformer_on_cpu(training: bool = True) -> Callable[[Language], Language]:
    """Transformer precision on the CPU: predictions, and with `training`
    also training steps, in bfloat16 where the CPU computes it natively; fp32
    elsewhere. The configs ask for mixed precision, which GPUs train with; on
    the CPU thinc's grad scaler raises ("Gradient scaling is not supported"),
    so it is switched off there, and `spacy train` works on the CPU with the
    config as it is."""
    mixin = BFloat16TrainOnCPU if training else BFloat16PredictOnCPU

    def use_cpu_precision(nlp: Language) -> Language:
        if not isinstance(get_current_ops(), NumpyOps):
            return nlp  # GPU: mixed precision as configured
        bfloat16 = cpu_computes_bfloat16()
        for _, component in nlp.pipeline:
            if not isinstance(getattr(component, "model", None), Model):
                continue
            for node in component.model.walk():
                for shim in node.shims:
                    if not isinstance(shim, PyTorchShim):
                        continue
                    if shim._mixed_precision:
                        shim._mixed_precision = False
                        shim._grad_scaler = PyTorchGradScaler(enabled=False)
                    if bfloat16 and not isinstance(shim, BFloat16PredictOnCPU):
                        shim.__class__ = bfloat16_shim_class(type(shim), mixin)
        return nlp

    return use_cpu_precision

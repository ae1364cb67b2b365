"""What the CPU computes natively, which decides the transformer's precision
on it: bfloat16 only where matrix products in it have hardware support
(elsewhere torch emulates them, slower than fp32), int8 only where dot
products of u8 x s8 pairs have VNNI or AMX (older x86 CPUs sum them in
saturating 16-bit lanes, which ONNX Runtime's and OpenVINO's documentation
warn can cost accuracy)."""

from .library_internals import torch_cpu_has


def cpu_computes_bfloat16() -> bool:
    """True where bfloat16 matrix products have AVX512-BF16 or AMX."""
    return torch_cpu_has("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def cpu_computes_int8() -> bool:
    """True where int8 dot products have VNNI (AVX512-VNNI) or AMX."""
    return torch_cpu_has("_is_vnni_supported", "_is_amx_tile_supported")

"""What the CPU computes natively. bfloat16 only where matrix products in it
have hardware support (elsewhere torch emulates them, slower than fp32).
int8 runs everywhere (its 7-bit weights cannot saturate), but the CPU
decides how its dot products are summed: VNNI or AMX sum u8 x s8 pairs in
32 bits, older x86 CPUs (AVX2) in saturating 16-bit lanes; scores and cards
name which."""

import os
from typing import Dict

from .library_internals import torch_cpu_has

# the environment variables that cap the instruction sets of torch's own
# kernels, of oneDNN's (ONEDNN_MAX_CPU_ISA, formerly DNNL_MAX_CPU_ISA), of
# MKL's and of numpy's OpenBLAS (a core type: Haswell is AVX2's); ONNX
# Runtime's int8 kernels have no such setting
KERNEL_CAP_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
    "OPENBLAS_CORETYPE",
)
# oneDNN's instruction sets without bfloat16 dot products, as it names them
ONEDNN_ISAS_WITHOUT_BFLOAT16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}


def kernel_caps() -> Dict[str, str]:
    """The caps this process runs under: a run's record names them beside
    the CPU's features, which they override."""
    return {name: os.environ[name] for name in KERNEL_CAP_VARIABLES if os.environ.get(name)}


def cpu_computes_bfloat16() -> bool:
    """True where bfloat16 matrix products have AVX512-BF16 or AMX and torch
    may use them. The CPU's features are not enough: torch's kernels can be
    capped below AVX512 (ATEN_CPU_CAPABILITY=avx2, which
    `torch.backends.cpu.get_cpu_capability` reports) and oneDNN's, which
    compute torch's bfloat16 products, below AVX512-BF16
    (ONEDNN_MAX_CPU_ISA), as when an AVX2-only CPU's speeds are measured on
    a newer one; bfloat16 products are then emulated, slower than fp32's,
    so a capped process predicts and trains in fp32."""
    if not torch_cpu_has("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        return False
    import torch  # present: torch_cpu_has found it

    caps = kernel_caps()
    onednn_isa = caps.get("ONEDNN_MAX_CPU_ISA") or caps.get("DNNL_MAX_CPU_ISA") or ""
    if onednn_isa.upper() in ONEDNN_ISAS_WITHOUT_BFLOAT16:
        return False
    return torch.backends.cpu.get_cpu_capability() not in ("DEFAULT", "AVX2")


def cpu_computes_int8() -> bool:
    """True where int8 dot products have VNNI (AVX512-VNNI) or AMX."""
    return torch_cpu_has("_is_vnni_supported", "_is_amx_tile_supported")


def int8_dot_products() -> str:
    """How this CPU sums int8 dot products, in words, for scores and cards."""
    if cpu_computes_int8():
        return "VNNI or AMX (u8 x s8 pairs summed in 32 bits)"
    return "no VNNI or AMX (AVX2: u8 x s8 pairs summed in 16-bit lanes)"

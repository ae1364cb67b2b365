"""What the CPU computes natively. bfloat16 only where matrix products in it
have hardware support (elsewhere torch emulates them, slower than fp32).
int8 runs everywhere (its 7-bit weights cannot saturate), but the CPU
decides how its dot products are summed: VNNI or AMX sum u8 x s8 pairs in
32 bits, older x86 CPUs (AVX2) in saturating 16-bit lanes; scores and cards
name which."""

from .library_internals import torch_cpu_has


def cpu_computes_bfloat16() -> bool:
    """True where bfloat16 matrix products have AVX512-BF16 or AMX."""
    return torch_cpu_has("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def cpu_computes_int8() -> bool:
    """True where int8 dot products have VNNI (AVX512-VNNI) or AMX."""
    return torch_cpu_has("_is_vnni_supported", "_is_amx_tile_supported")


def int8_dot_products() -> str:
    """How this CPU sums int8 dot products, in words, for scores and cards."""
    if cpu_computes_int8():
        return "VNNI or AMX (u8 x s8 pairs summed in 32 bits)"
    return "no VNNI or AMX (AVX2: u8 x s8 pairs summed in 16-bit lanes)"

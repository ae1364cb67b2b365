"""Matrix products of an ONNX graph in int8 with one activation scale per
row: every product with a constant weight matrix becomes a quantization of
its input, each row (each token's vector) by its own largest magnitude, and
ONNX Runtime's `MatMulIntegerToFloat`, which multiplies in integers and
scales the result by the row's scale and the weight column's.

Why by hand: ONNX Runtime's quantizers scale activations per tensor, either
per call (`quantize_dynamic`: a row's values then depend on the other rows
of the call, so the encoder could only be called once per window) or once
for all calls (`quantize_static`: scales calibrated on sample text, which
clip the outliers of transformer activations). Per-row scales make a row's
result independent of whatever else the call holds, so windows can be
encoded together. ONNX Runtime's `MatMulNBits` quantizes its inputs per row
too, but its 8-bit kernels were no faster than fp32 ones (docs/decisions.md).

Weights are quantized per output column to 7 bits' worth of levels
([-64, 64]): CPUs without VNNI or AMX multiply u8 x s8 pairs with
`vpmaddubsw`, which sums two products in a saturating 16-bit lane: two
products of an activation (at most 255) and a 7-bit weight fit in it where
those of a full 8-bit weight do not (the remedy ONNX Runtime and OpenVINO
document). One graph then computes the same integers on every x86
CPU. Activations are symmetric: uint8 with zero point 128, so every row
uses 255 levels around zero.

The rows are quantized by QuantizeLinear with one block per row (ONNX opset
21), which divides and rounds in one pass: the same integers as a division
followed by QuantizeLinear, one pass over the activations fewer.
"""

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import numpy

if TYPE_CHECKING:  # onnx is optional (requirements-onnx.txt)
    import onnx

# a weight column's largest magnitude maps to this level: 7 bits' worth, so
# that no pair of u8 x s8 products overflows a 16-bit lane
WEIGHT_LEVEL = 64
# the opset quantize_rows writes: QuantizeLinear with blocks (a scale per row) is from 21 on
OPSET = 21
# an activation row's largest magnitude maps to this many levels from its zero point
ACTIVATION_LEVEL = 127
ACTIVATION_ZERO_POINT = 128
DESCRIPTION = (
    f"weights int8 per output channel in [-{WEIGHT_LEVEL}, {WEIGHT_LEVEL}] (no saturation on AVX2), "
    "activations uint8 with a scale per row (per token), at run time"
)


def quantized_weight(weight: numpy.ndarray, weight_level: int = WEIGHT_LEVEL) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """A float weight matrix (inputs x outputs) as int8 levels within
    +-weight_level and the scale of each output column."""
    scale = numpy.maximum(numpy.abs(weight).max(axis=0), 1e-12) / weight_level
    levels = numpy.clip(numpy.round(weight / scale), -weight_level, weight_level)
    return levels.astype(numpy.int8), scale.astype(numpy.float32)


def product_inputs(model: "onnx.ModelProto") -> List[str]:
    """The inputs of the products `quantize_rows` rewrites (MatMuls with a
    constant weight), each once, in graph order."""
    constants = {tensor.name for tensor in model.graph.initializer}
    inputs: List[str] = []
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in constants and node.input[0] not in inputs:
            inputs.append(node.input[0])
    return inputs


def quantize_rows(
    model: "onnx.ModelProto", weight_level: int = WEIGHT_LEVEL, tensor_scales: Optional[Dict[str, float]] = None
) -> int:
    """Rewrite `model` in place: every MatMul whose second input is a
    constant becomes a per-row int8 product (see the module). An input read
    by several products (the query, key and value of an attention layer) is
    quantized once. `weight_level` other than WEIGHT_LEVEL (127: full 8-bit
    weights) is for measuring what the 7-bit remedy costs, as
    benchmarks/int8_weight_range.py does; `tensor_scales` (input name ->
    one fixed scale, calibrated on sample text: static int8; the inputs it
    does not name keep per-row scales) for measuring the per-tensor
    alternative to per-row scales, as the encoder_graphs mode of
    benchmarks/ does. The number of products rewritten."""
    from onnx import helper, numpy_helper

    tensor_scales = tensor_scales or {}
    graph = model.graph
    opset = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    if opset < OPSET:
        raise ValueError(f"opset {opset}: per-row QuantizeLinear needs opset {OPSET} (onnx.version_converter)")
    constants = {tensor.name: tensor for tensor in graph.initializer}
    shared = {
        "row_int8_levels": numpy.array(1 / ACTIVATION_LEVEL, numpy.float32),
        "row_int8_smallest": numpy.array(1e-12, numpy.float32),
        "row_int8_zero_point": numpy.array(ACTIVATION_ZERO_POINT, numpy.uint8),
        "row_int8_last_axis": numpy.array([-1], numpy.int64),
    }
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in shared.items())
    quantized_inputs: Dict[str, Tuple[str, str]] = {}
    row_zero_points = False
    nodes: List["onnx.NodeProto"] = []
    rewritten = 0
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in constants:
            nodes.append(node)
            continue
        source, weight_name = node.input
        weight = numpy_helper.to_array(constants[weight_name]).astype(numpy.float32)
        if source not in quantized_inputs and source in tensor_scales:
            prefix = f"row_int8_input{len(quantized_inputs)}_"
            graph.initializer.append(
                numpy_helper.from_array(numpy.array(tensor_scales[source], numpy.float32), prefix + "scale")
            )
            nodes.append(
                helper.make_node(
                    "QuantizeLinear", [source, prefix + "scale", "row_int8_zero_point"], [prefix + "quantized"]
                )
            )
            quantized_inputs[source] = (prefix + "quantized", prefix + "scale")
        if source not in quantized_inputs:
            prefix = f"row_int8_input{len(quantized_inputs)}_"
            nodes += [
                helper.make_node("Abs", [source], [prefix + "magnitude"]),
                helper.make_node("ReduceMax", [prefix + "magnitude", "row_int8_last_axis"], [prefix + "largest"]),
                helper.make_node("Max", [prefix + "largest", "row_int8_smallest"], [prefix + "nonzero"]),
                helper.make_node("Mul", [prefix + "nonzero", "row_int8_levels"], [prefix + "scale"]),
            ]
            if not row_zero_points:  # every row scale has the shape of the call's rows: one zero point for all
                nodes += [
                    helper.make_node("Shape", [prefix + "scale"], ["row_int8_rows"]),
                    helper.make_node("Expand", ["row_int8_zero_point", "row_int8_rows"], ["row_int8_zero_points"]),
                ]
                row_zero_points = True
            nodes.append(
                helper.make_node(
                    "QuantizeLinear",
                    [source, prefix + "scale", "row_int8_zero_points"],
                    [prefix + "quantized"],
                    axis=-1,
                    block_size=weight.shape[0],  # one block: the whole row
                )
            )
            quantized_inputs[source] = (prefix + "quantized", prefix + "scale")
        quantized, scale = quantized_inputs[source]
        levels, column_scales = quantized_weight(weight, weight_level)
        prefix = f"row_int8_product{rewritten}_"
        graph.initializer.extend(
            [
                numpy_helper.from_array(levels, prefix + "weight"),
                numpy_helper.from_array(column_scales, prefix + "scale"),
            ]
        )
        nodes.append(
            helper.make_node(
                "MatMulIntegerToFloat",
                [quantized, prefix + "weight", scale, prefix + "scale", "row_int8_zero_point"],
                [node.output[0]],
                name=prefix + "matmul",
                domain="com.microsoft",
            )
        )
        rewritten += 1
    used = {name for node in nodes for name in node.input}
    for name, tensor in constants.items():
        if name not in used:
            graph.initializer.remove(tensor)
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return rewritten

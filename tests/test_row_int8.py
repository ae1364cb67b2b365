"""Per-row int8 products (conll_ner/packaging/row_int8.py) on a one-product
ONNX graph: close to the float product, and each row's result the same bit
for bit whatever other rows share the call."""

import numpy
import pytest

from conll_ner.packaging.row_int8 import OPSET, WEIGHT_LEVEL, quantize_rows, quantized_weight

onnx = pytest.importorskip("onnx", reason="the int8 build needs onnxruntime and onnx (requirements-onnx.txt)")
onnxruntime = pytest.importorskip("onnxruntime", reason="the int8 build needs onnxruntime and onnx")


def one_product_graph(weight: numpy.ndarray) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("MatMul", ["x", "weight"], ["y"])
    graph = helper.make_graph(
        [node],
        "product",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    assert quantize_rows(model) == 1
    assert [node.op_type for node in model.graph.node][-1] == "MatMulIntegerToFloat"
    assert "weight" not in {tensor.name for tensor in model.graph.initializer}  # the float weights are gone
    return model.SerializeToString()


def test_weights_use_7_bits_per_output_column():
    weight = numpy.array([[0.5, -2.0], [-0.25, 1.0], [0.125, 0.0]], dtype=numpy.float32)
    levels, scales = quantized_weight(weight)
    assert levels.dtype == numpy.int8 and numpy.abs(levels).max() == WEIGHT_LEVEL == 64
    numpy.testing.assert_allclose(scales, [0.5 / 64, 2.0 / 64])
    numpy.testing.assert_allclose(levels * scales, weight, atol=max(scales) / 2)


def test_each_row_is_scaled_on_its_own_so_its_result_does_not_depend_on_the_call():
    rng = numpy.random.default_rng(0)
    weight = rng.normal(size=(48, 16)).astype(numpy.float32)
    session = onnxruntime.InferenceSession(one_product_graph(weight), providers=["CPUExecutionProvider"])
    # rows of very different magnitudes: one scale per call would shrink the small rows to a few levels
    magnitudes = numpy.array([0.01, 1.0, 30.0, 1000.0])[:, None, None]
    x = (rng.normal(size=(4, 5, 48)) * magnitudes).astype(numpy.float32)
    (together,) = session.run(["y"], {"x": x})
    for row in range(len(x)):
        (alone,) = session.run(["y"], {"x": x[row : row + 1]})
        numpy.testing.assert_array_equal(alone[0], together[row])
    exact = x @ weight
    error = numpy.abs(together - exact).max(-1) / numpy.abs(exact).max(-1)
    assert error.max() < 0.05  # each row keeps its precision relative to its own magnitude


def test_rows_are_rounded_to_their_own_levels_as_numpy_rounds_them():
    rng = numpy.random.default_rng(1)
    weight = rng.normal(size=(24, 8)).astype(numpy.float32)
    session = onnxruntime.InferenceSession(one_product_graph(weight), providers=["CPUExecutionProvider"])
    x = (rng.normal(size=(3, 4, 24)) * numpy.array([0.1, 1.0, 50.0])[:, None, None]).astype(numpy.float32)
    (y,) = session.run(["y"], {"x": x})
    row_scale = numpy.maximum(numpy.abs(x).max(-1, keepdims=True), 1e-12).astype(numpy.float32) * numpy.float32(1 / 127)
    levels = numpy.clip(numpy.rint(x / row_scale), -128, 127)  # the integers QuantizeLinear keeps, less 128
    weight_levels, column_scales = quantized_weight(weight)
    expected = (levels @ weight_levels.astype(numpy.float64)) * row_scale * column_scales
    numpy.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_graphs_below_opset_21_are_refused_with_the_converter_named():
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "weight"], ["y"])],
        "product",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(numpy.ones((2, 2), numpy.float32), "weight")],
    )
    with pytest.raises(ValueError, match="version_converter"):
        quantize_rows(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def two_input_graph(first: numpy.ndarray, second: numpy.ndarray) -> "onnx.ModelProto":
    """y = x @ first, z = y @ second: two products, each with its own input."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "first"], ["y"]), helper.make_node("MatMul", ["y", "second"], ["z"])],
        "products",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", first.shape[0]])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(first, "first"), numpy_helper.from_array(second, "second")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def test_named_inputs_take_their_fixed_scale_and_the_others_keep_per_row_scales():
    from conll_ner.packaging.row_int8 import product_inputs

    rng = numpy.random.default_rng(2)
    first = rng.normal(size=(16, 12)).astype(numpy.float32)
    second = rng.normal(size=(12, 8)).astype(numpy.float32)
    model = two_input_graph(first, second)
    assert product_inputs(model) == ["x", "y"]
    fixed = 0.05  # x's values reach about 4: a fixed scale clips nothing at 127 levels of 0.05
    assert quantize_rows(model, tensor_scales={"x": fixed}) == 2
    quantizers = [node for node in model.graph.node if node.op_type == "QuantizeLinear"]
    assert [node.input[0] for node in quantizers] == ["x", "y"]
    assert not any(attribute.name == "block_size" for attribute in quantizers[0].attribute)  # one scale
    assert any(attribute.name == "block_size" for attribute in quantizers[1].attribute)  # a scale per row
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = rng.normal(size=(3, 4, 16)).astype(numpy.float32)
    (z,) = session.run(["z"], {"x": x})
    # x is quantized with the fixed scale, as numpy rounds it
    levels = numpy.clip(numpy.rint(x / numpy.float32(fixed)), -128, 127)
    first_levels, first_scales = quantized_weight(first)
    y = ((levels @ first_levels.astype(numpy.float64)) * fixed * first_scales).astype(numpy.float32)
    # y per row, as the per-row products compute it
    row_scale = numpy.abs(y).max(-1, keepdims=True) * numpy.float32(1 / 127)
    second_levels, second_scales = quantized_weight(second)
    expected = (numpy.clip(numpy.rint(y / row_scale), -128, 127) @ second_levels) * row_scale * second_scales
    numpy.testing.assert_allclose(z, expected, rtol=1e-4, atol=1e-4)
    # a fixed scale does not depend on the call either
    for row in range(len(x)):
        (alone,) = session.run(["z"], {"x": x[row : row + 1]})
        numpy.testing.assert_array_equal(alone[0], z[row])

"""The structure of spacy-transformers, thinc, transformers and torch that the
CPU runtime builds on (conll_ner/pipeline/library_internals.py and
transformer_model.py): an upgrade inside the pinned ranges that moves any of
it fails here, instead of the shim predicting wrongly or a CPU feature check
quietly answering False."""

import inspect

import pytest
import spacy
import srsly
import torch
from spacy.util import registry
from spacy_transformers.data_classes import HFObjects
from spacy_transformers.layers.hf_shim import HFShim
from spacy_transformers.layers.transformer_model import TransformerModel
from thinc.api import Model, PyTorchShim
from thinc.layers.pytorchwrapper import forward as pytorch_forward
from tiny_models import build_tiny_transformer_pipeline

from conll_ner.pipeline.cpu_shim import INT8_KEY, CPUTransformerShim
from conll_ner.pipeline.library_internals import (
    shim_grad_scaling,
    shim_mixed_precision,
    torch_model,
    use_eager_attention,
)
from conll_ner.pipeline.transformer_model import create_transformer_model


def parameters(function):
    return list(inspect.signature(function).parameters)


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    return spacy.load(build_tiny_transformer_pipeline(tmp_path_factory.mktemp("tiny")))


def test_our_architecture_takes_spacy_transformers_arguments_first():
    theirs = parameters(registry.architectures.get("spacy-transformers.TransformerModel.v3"))
    assert theirs == ["name", "get_spans", "tokenizer_config", "transformer_config", "mixed_precision",
                      "grad_scaler_config"]  # fmt: skip
    assert parameters(create_transformer_model)[: len(theirs)] == theirs


def test_the_transformer_model_wraps_one_hf_shim_where_it_reaches_it():
    """TransformerModel's first layer is HFWrapper's thinc PyTorch wrapper
    with one HFShim, the shim spacy-transformers itself reaches as
    `layers[0].shims[0]` (set_pytorch_transformer, the tokenizer property):
    the architecture puts its shim there, and a loaded pipeline's encoder is
    the one in our shim (next test)."""
    model = TransformerModel("tiny", lambda docs: docs, {}, {})
    (wrapper,) = model.layers
    assert wrapper.name == "hf-pytorch" and wrapper._func is pytorch_forward
    assert [type(shim) for shim in wrapper.shims] == [HFShim]
    assert set(wrapper.attrs) == {"convert_inputs", "convert_outputs"}
    ours = create_transformer_model("tiny", lambda docs: docs)
    assert type(ours.layers[0].shims[0]) is CPUTransformerShim and len(ours.layers[0].shims) == 1


def test_a_loaded_pipeline_runs_its_encoder_in_our_shim(tiny_pipeline):
    model = tiny_pipeline.get_pipe("transformer").model
    (shim,) = model.layers[0].shims
    assert type(shim) is CPUTransformerShim
    assert model.transformer is torch_model(shim) and isinstance(torch_model(shim), torch.nn.Module)


def test_the_shim_attributes_the_accessors_read():
    """thinc's Shim keeps the wrapped model in `_model`; PyTorchShim the
    autocast switch in `_mixed_precision` and the scaler in `_grad_scaler`
    (PyTorchGradScaler `_enabled`); HFShim passes its settings on."""
    assert parameters(HFShim.__init__)[:6] == ["self", "model", "config", "optimizer", "mixed_precision",
                                               "grad_scaler_config"]  # fmt: skip
    assert issubclass(HFShim, PyTorchShim)
    for mixed_precision in (False, True):
        shim = HFShim(HFObjects(None, None, None, {}, {}), mixed_precision=mixed_precision, grad_scaler_config={})
        assert torch_model(shim) is None
        assert shim_mixed_precision(shim) is mixed_precision and shim_grad_scaling(shim) is mixed_precision
    assert shim_mixed_precision(object()) is False  # a shim without autocast


def test_the_shim_overrides_pytorch_shims_calls_as_thinc_makes_them():
    for method in ("predict", "begin_update"):
        assert parameters(getattr(PyTorchShim, method)) == ["self", "inputs"]
    assert parameters(HFShim.to_bytes) == ["self"] and parameters(HFShim.from_bytes) == ["self", "bytes_data"]
    assert isinstance(inspect.getattr_static(PyTorchShim, "device"), property)


def test_hf_shims_message_is_a_msgpack_dict_whose_loader_ignores_our_key(tiny_pipeline):
    """The int8 graph travels in HFShim's serialized message under INT8_KEY:
    spacy-transformers' loader must read its own keys and leave ours."""
    shim = tiny_pipeline.get_pipe("transformer").model.layers[0].shims[0]
    message = srsly.msgpack_loads(HFShim.to_bytes(shim))
    assert isinstance(message, dict) and INT8_KEY not in message
    message[INT8_KEY] = {"graph": b"not a graph", "settings": {}}
    HFShim.from_bytes(shim, srsly.msgpack_dumps(message))
    assert len(tiny_pipeline("EU rejects German call .")) == 5


def test_transformers_config_keeps_its_attention_implementation(tiny_pipeline):
    encoder = torch_model(tiny_pipeline.get_pipe("transformer").model.layers[0].shims[0])
    assert encoder.get_input_embeddings().weight.dim() == 2
    config = encoder.config.__class__.from_dict(encoder.config.to_dict())
    use_eager_attention(config)
    assert config._attn_implementation == "eager"


def test_torch_has_the_cpu_feature_checks_the_runtime_asks():
    """library_internals.torch_cpu_has answers False for a check torch lacks:
    a renamed check would switch bfloat16 or int8 off without a word."""
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported", "_is_vnni_supported"):
        assert isinstance(getattr(torch.cpu, check)(), bool), check


def test_spacy_transformers_listener_parts_the_listener_architecture_chains():
    from spacy_transformers.layers import TransformerListener, trfs2arrays

    assert "upstream_name" in parameters(TransformerListener.__init__)
    assert parameters(trfs2arrays)[:2] == ["pooling", "grad_factor"]
    assert isinstance(TransformerListener(upstream_name="*"), Model)

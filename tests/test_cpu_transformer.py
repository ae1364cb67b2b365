"""The transformer's CPU runtime (conll_ner/pipeline/: the shim, its parts and the architecture) and
the int8 build (conll_ner/packaging/int8.py), on tiny random encoders."""

import copy
import inspect
import os
import shutil
import subprocess
import sys

import numpy
import pytest
import spacy
import torch
from conftest import PROJECT_DIR
from spacy.training import Example
from spacy.util import load_config, load_config_from_str, load_model_from_config
from spacy_transformers.layers.hf_shim import HFShim
from spacy_transformers.pipeline_component import Transformer
from thinc.api import Adam, ArgsKwargs, NumpyOps, fix_random_seed, get_current_ops, set_current_ops
from tiny_models import build_tiny_transformer_pipeline, fixture_texts
from transformers.models.bert.modeling_bert import BertSdpaSelfAttention, BertSelfAttention

from conll_ner.packaging import int8 as int8_build
from conll_ner.pipeline import cpu_features, notices
from conll_ner.pipeline.cpu_shim import CPUTransformerShim
from conll_ner.pipeline.int8_encoder import ROW_SCHEME
from conll_ner.pipeline.length_groups import equal_length_groups, length_groups
from conll_ner.pipeline.library_internals import shim_grad_scaling, shim_mixed_precision, torch_cpu_has, torch_model
from conll_ner.pipeline.prediction_runtime import prediction_runtime


@pytest.fixture
def blis_ops():
    previous = get_current_ops()
    set_current_ops(NumpyOps(use_blis=True))
    yield
    set_current_ops(previous)


def test_a_pipelines_layers_multiply_with_numpy_and_the_process_keeps_its_ops(blis_ops, tmp_path):
    cnn = load_model_from_config(load_config(PROJECT_DIR / "configs" / "cnn.cfg"), auto_fill=True, validate=False)
    transformer = spacy.load(build_tiny_transformer_pipeline(tmp_path))
    for nlp in (cnn, transformer):
        layers = [node for _, pipe in nlp.pipeline for node in pipe.model.walk()]
        assert layers and all(type(node.ops) is NumpyOps and not node.ops.use_blis for node in layers)
    assert get_current_ops().use_blis  # the process's ops, for other pipelines, as they were


def test_numpy_matmul_gives_the_same_products(blis_ops):
    a, b = numpy.random.rand(50, 40).astype("f"), numpy.random.rand(40, 30).astype("f")
    numpy.testing.assert_allclose(NumpyOps(use_blis=False).gemm(a, b), NumpyOps(use_blis=True).gemm(a, b), rtol=1e-5)


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    return build_tiny_transformer_pipeline(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def int8_pipeline(tiny_pipeline, tmp_path_factory):
    """The tiny pipeline with its int8 encoder, as the package step builds it."""
    pytest.importorskip("onnxruntime", reason="the int8 build needs onnxruntime and onnx (requirements-onnx.txt)")
    output = tmp_path_factory.mktemp("int8") / "pipeline"
    int8_build.write_int8_pipeline(tiny_pipeline, output)
    return output


# spacy-transformers' own max_batch_items (its Transformer component's default)
SPACY_TRANSFORMERS_MAX_BATCH_ITEMS = inspect.signature(Transformer.__init__).parameters["max_batch_items"].default


def cpu(monkeypatch, bfloat16=False):
    """A CPU with or without native bfloat16."""
    monkeypatch.setattr(cpu_features, "cpu_computes_bfloat16", lambda: bfloat16)


def load(path, **settings):
    return spacy.load(path, config={f"components.transformer.model.{k}": v for k, v in settings.items()})


def transformer_shim(nlp):
    return nlp.get_pipe("transformer").model.layers[0].shims[0]


def hidden_states(nlp, text):
    return nlp(text)._.trf_data.tensors[0]


def entities(docs):
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs]


@pytest.fixture
def no_export(monkeypatch):
    """Fails the test if anything exports an encoder in this process."""

    def exported(*args, **kwargs):
        raise AssertionError("an encoder was exported")

    monkeypatch.setattr(int8_build, "export_in_child", exported)
    monkeypatch.setattr(torch.onnx, "export", exported)


# the architecture builds its shim; the config holds the settings


def test_the_config_builds_the_cpu_shim_with_its_settings(tiny_pipeline):
    nlp = spacy.load(tiny_pipeline)
    model = nlp.config["components"]["transformer"]["model"]
    assert model["@architectures"] == "conll_ner.TransformerModel.v1"
    shim = transformer_shim(nlp)
    assert type(shim) is CPUTransformerShim
    assert (shim.int8, shim.bfloat16, shim.token_budget) == (True, True, 1024)
    assert shim.freeze_word_embeddings_above == model["freeze_word_embeddings_above"] == 100_000
    assert nlp.config["nlp"]["after_pipeline_creation"] == {"@callbacks": "conll_ner.numpy_matmul_on_cpu.v2"}
    off = load(tiny_pipeline, cpu_int8=False, cpu_bfloat16=False, cpu_token_budget=0)
    assert (transformer_shim(off).int8, transformer_shim(off).bfloat16, transformer_shim(off).token_budget) == (
        False,
        False,
        0,
    )


def test_configs_mixed_precision_trains_in_fp32_on_the_cpu(tiny_pipeline):
    """configs/transformer.cfg asks for mixed precision (for GPUs); on the CPU
    thinc's grad scaler would raise at the first update."""
    nlp = spacy.load(tiny_pipeline)
    assert nlp.config["components"]["transformer"]["model"]["mixed_precision"] is True
    shim = transformer_shim(nlp)
    assert not shim_mixed_precision(shim) and not shim_grad_scaling(shim)
    losses = nlp.update([Example.from_dict(nlp.make_doc(fixture_texts()[0]), {"entities": []})], losses={})
    assert numpy.isfinite(losses["transformer"])


def test_an_update_releases_the_gradients_and_changes_what_thinc_changes(tiny_pipeline, monkeypatch):
    """The shim's finish_update lets each gradient go instead of zeroing it;
    the weights after each update are thinc's, bit for bit."""
    cpu(monkeypatch)

    def examples(nlp):
        return [Example.from_dict(nlp.make_doc(text), {"entities": []}) for text in fixture_texts()[:4]]

    loaded = {
        name: value.detach().clone()
        for name, value in torch_model(transformer_shim(spacy.load(tiny_pipeline))).named_parameters()
    }
    weights = {}
    for update, finish_update in (("thinc", HFShim.finish_update), ("released", CPUTransformerShim.finish_update)):
        monkeypatch.setattr(CPUTransformerShim, "finish_update", finish_update)
        fix_random_seed(0)  # the same dropout masks in both runs
        nlp = spacy.load(tiny_pipeline)
        optimizer = Adam(0.001)  # the config's schedule starts at a rate of 0
        for _ in range(3):
            nlp.update(examples(nlp), sgd=optimizer, losses={})
        # spaCy applies the transformer's gradients at the next update's
        # finish_update (its listeners backpropagate after it): apply the last
        encoder = torch_model(transformer_shim(nlp))
        assert any(parameter.grad is not None for parameter in encoder.parameters())
        nlp.get_pipe("transformer").finish_update(optimizer)
        grads = [parameter.grad for parameter in encoder.parameters()]
        if update == "released":
            assert all(grad is None for grad in grads)
        else:
            zeroed = [grad for grad in grads if grad is not None]
            assert zeroed and all(not grad.any() for grad in zeroed)
        weights[update] = {name: parameter.detach().clone() for name, parameter in encoder.named_parameters()}
    assert weights["thinc"].keys() == weights["released"].keys() == loaded.keys()
    assert any(not torch.equal(value, loaded[name]) for name, value in weights["released"].items())
    for name, value in weights["thinc"].items():
        assert torch.equal(value, weights["released"][name]), name


def test_a_config_asking_for_outputs_int8_lacks_is_refused(tiny_pipeline):
    with pytest.raises(ValueError, match="asks for output_hidden_states.*set cpu_int8 = false"):
        load(tiny_pipeline, **{"transformer_config.output_hidden_states": True})
    nlp = load(tiny_pipeline, cpu_int8=False, **{"transformer_config.output_hidden_states": True})
    assert len(nlp(fixture_texts()[0])) > 0


# bfloat16 with torch


def test_predictions_in_bfloat16_where_the_cpu_computes_it(tiny_pipeline, monkeypatch):
    cpu(monkeypatch, bfloat16=False)
    fp32 = spacy.load(tiny_pipeline)
    assert prediction_runtime(fp32) == {"device": "cpu", "precision": "fp32"}
    text = fixture_texts()[0]
    exact = hidden_states(fp32, text)
    cpu(monkeypatch, bfloat16=True)
    assert prediction_runtime(fp32) == {"device": "cpu", "precision": "bfloat16"}
    rounded = hidden_states(fp32, text)
    # float32 for numpy, computed with bfloat16's 8-bit mantissa: close, not equal
    assert rounded.dtype == numpy.float32
    assert not numpy.array_equal(exact, rounded)
    numpy.testing.assert_allclose(rounded, exact, atol=0.1)
    assert prediction_runtime(load(tiny_pipeline, cpu_bfloat16=False))["precision"] == "fp32"


def test_the_shim_survives_deep_copy(tiny_pipeline, monkeypatch):
    cpu(monkeypatch, bfloat16=True)
    nlp = spacy.load(tiny_pipeline)
    copied = copy.deepcopy(nlp)
    assert type(transformer_shim(copied)) is CPUTransformerShim
    numpy.testing.assert_array_equal(hidden_states(copied, fixture_texts()[0]), hidden_states(nlp, fixture_texts()[0]))


def training_step(nlp):
    """One forward and backward pass of the transformer's shim, as a training
    update makes it: the outputs handed to thinc and the gradient of the word
    embeddings."""
    shim = transformer_shim(nlp)
    torch_model(shim).zero_grad()
    tokenizer = nlp.get_pipe("transformer").model.tokenizer
    encoding = tokenizer(fixture_texts()[:2], padding=True, return_tensors="pt")
    inputs = ArgsKwargs(
        args=(), kwargs={"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}
    )
    torch.manual_seed(0)  # the same dropout masks in both precisions
    outputs, backprop = shim.begin_update(inputs)
    hidden = outputs.last_hidden_state
    d_hidden = torch.randn(hidden.shape, generator=torch.Generator().manual_seed(1))
    backprop(ArgsKwargs(args=(hidden,), kwargs={"grad_tensors": (d_hidden,)}))
    embeddings = torch_model(shim).embeddings.word_embeddings.weight
    return hidden.detach(), embeddings.grad.clone()


@pytest.mark.parametrize(
    "cap", [{"ATEN_CPU_CAPABILITY": "avx2"}, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, {"DNNL_MAX_CPU_ISA": "avx512_core"}]
)
def test_a_process_whose_kernels_are_capped_below_bfloat16_computes_in_fp32(cap):
    """Capped, torch emulates bfloat16 even on a CPU that has it: the
    runtime must not choose it there. Uncapped, the CPU's features decide."""
    script = "from conll_ner.pipeline import cpu_features; print(cpu_features.cpu_computes_bfloat16())"
    environment = {key: value for key, value in os.environ.items() if key not in cpu_features.KERNEL_CAP_VARIABLES}
    uncapped = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment)
    capped = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={**environment, **cap})
    assert uncapped.returncode == capped.returncode == 0, uncapped.stderr[-2000:] + capped.stderr[-2000:]
    has_bfloat16 = torch_cpu_has("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    assert uncapped.stdout.split() == [str(has_bfloat16)]
    assert capped.stdout.split() == ["False"]


@pytest.mark.parametrize("bfloat16", [True, False])
def test_training_steps_in_bfloat16_unless_switched_off(tiny_pipeline, monkeypatch, bfloat16):
    cpu(monkeypatch, bfloat16=True)
    nlp = load(tiny_pipeline, cpu_bfloat16=bfloat16)
    outputs, gradient = training_step(nlp)
    cpu(monkeypatch, bfloat16=False)
    exact_outputs, exact_gradient = training_step(spacy.load(tiny_pipeline))
    # fp32 outputs for thinc, computed in bfloat16 (close, not equal) and
    # differentiable through the cast: the gradients reach the embeddings
    assert outputs.dtype == torch.float32
    assert torch.equal(outputs, exact_outputs) is not bfloat16
    torch.testing.assert_close(outputs, exact_outputs, atol=0.1, rtol=0)
    assert gradient.abs().sum() > 0
    assert float((gradient - exact_gradient).norm() / exact_gradient.norm()) < 0.05


# attention on the CPU


def initialized(tiny_pipeline, **settings):
    """The tiny pipeline's config initialized afresh on the CPU, its encoder
    loaded from the tiny BERT checkpoint, as the train step starts a run."""
    overrides = {f"components.transformer.model.{key}": value for key, value in settings.items()}
    config = spacy.load(tiny_pipeline).config.copy()
    nlp = load_model_from_config(load_config_from_str(config.to_str(), overrides=overrides), auto_fill=True)
    fix_random_seed(0)
    nlp.initialize()
    return nlp


def self_attention(nlp):
    return torch_model(transformer_shim(nlp)).encoder.layer[0].attention.self


def test_an_encoder_loaded_from_its_checkpoint_on_the_cpu_computes_attention_eagerly(tiny_pipeline):
    assert spacy.load(tiny_pipeline).config["components"]["transformer"]["model"]["cpu_attention"] == "eager"
    assert type(self_attention(initialized(tiny_pipeline))) is BertSelfAttention
    assert type(self_attention(initialized(tiny_pipeline, cpu_attention="sdpa"))) is BertSdpaSelfAttention
    # the config's transformer_config wins, and the setting stays out of the config
    named = initialized(tiny_pipeline, **{"transformer_config.attn_implementation": "sdpa"})
    assert type(self_attention(named)) is BertSdpaSelfAttention
    assert (
        "attn_implementation"
        not in initialized(tiny_pipeline).config["components"]["transformer"]["model"]["transformer_config"]
    )
    # a saved pipeline is rebuilt from its saved Hugging Face config, with transformers' default
    assert type(self_attention(spacy.load(tiny_pipeline))) is BertSdpaSelfAttention
    with pytest.raises(ValueError, match="cpu_attention = 'flash': use one of eager, sdpa"):
        initialized(tiny_pipeline, cpu_attention="flash")


def test_eager_attention_trains_the_function_sdpa_trains(tiny_pipeline, monkeypatch):
    """Without dropout (whose masks each implementation draws its own way),
    eager and SDPA attention give the same outputs and gradients."""
    cpu(monkeypatch, bfloat16=False)
    no_dropout = {"transformer_config.attention_probs_dropout_prob": 0.0, "transformer_config.hidden_dropout_prob": 0.0}
    eager_outputs, eager_gradient = training_step(initialized(tiny_pipeline, **no_dropout))
    sdpa_outputs, sdpa_gradient = training_step(initialized(tiny_pipeline, cpu_attention="sdpa", **no_dropout))
    torch.testing.assert_close(eager_outputs, sdpa_outputs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eager_gradient, sdpa_gradient, atol=1e-5, rtol=1e-4)
    assert eager_gradient.abs().sum() > 0


# frozen word embeddings for large vocabularies


def update_once(nlp):
    from thinc.api import Adam

    text = fixture_texts()[0]
    doc = nlp.make_doc(text)
    example = Example.from_dict(doc, {"entities": [(0, len(doc[0].text), "PER")]})
    nlp.update([example], sgd=Adam(0.01), losses={})


@pytest.mark.parametrize("margin, frozen", [(-1, True), (0, False)])
def test_word_embeddings_of_vocabularies_above_the_threshold_are_frozen(tiny_pipeline, margin, frozen, tmp_path):
    rows = torch_model(transformer_shim(spacy.load(tiny_pipeline))).get_input_embeddings().weight.shape[0]
    nlp = load(tiny_pipeline, freeze_word_embeddings_above=rows + margin)
    model = torch_model(transformer_shim(nlp))
    before = {name: value.detach().clone() for name, value in model.named_parameters()}
    update_once(nlp)
    update_once(nlp)
    after = dict(model.named_parameters())
    word_embeddings = "embeddings.word_embeddings.weight"
    assert torch.equal(after[word_embeddings], before[word_embeddings]) is frozen
    assert (after[word_embeddings].grad is None) is frozen
    # every other weight trains either way
    changed = [name for name in before if name != word_embeddings and not torch.equal(after[name], before[name])]
    assert "encoder.layer.0.attention.self.query.weight" in changed and "embeddings.LayerNorm.weight" in changed
    # the whole vocabulary is saved with the pipeline, as it was trained
    nlp.to_disk(tmp_path / "trained")
    reloaded = torch_model(transformer_shim(spacy.load(tmp_path / "trained"))).get_input_embeddings().weight
    assert reloaded.shape[0] == rows and torch.equal(reloaded, after[word_embeddings].detach())


def test_the_default_threshold_freezes_multilingual_vocabularies_only(tiny_pipeline):
    threshold = spacy.load(tiny_pipeline).config["components"]["transformer"]["model"]["freeze_word_embeddings_above"]
    # mBERT 119,547 and XLM-R 250,002 pieces; MiniLM 30,522 and BERT-large 28,996
    assert all(rows > threshold for rows in (119_547, 250_002))
    assert all(rows <= threshold for rows in (30_522, 28_996))


# int8: built once, carried by the pipeline


def cosine_per_token(a, b):
    return (a * b).sum(-1) / (numpy.linalg.norm(a, axis=-1) * numpy.linalg.norm(b, axis=-1))


def test_a_pipeline_without_an_int8_encoder_never_exports(tiny_pipeline, monkeypatch, no_export):
    cpu(monkeypatch, bfloat16=True)
    nlp = spacy.load(tiny_pipeline)
    docs = list(nlp.pipe(fixture_texts()))
    assert len(docs) == len(fixture_texts())
    assert transformer_shim(nlp).int8_graph is None
    assert prediction_runtime(nlp)["precision"] == "bfloat16"
    nlp.update([Example.from_dict(nlp.make_doc(fixture_texts()[0]), {"entities": []})])  # training: no export either


@pytest.mark.parametrize("vnni", [True, False], ids=["vnni-or-amx", "avx2-only"])
def test_the_int8_pipeline_predicts_in_int8_close_to_fp32_on_every_cpu(
    tiny_pipeline, int8_pipeline, monkeypatch, no_export, vnni
):
    """7-bit weights cannot saturate where u8 x s8 pairs are summed in 16-bit
    lanes, so int8 runs on CPUs with and without VNNI alike."""
    cpu(monkeypatch)
    monkeypatch.setattr(cpu_features, "cpu_computes_int8", lambda: vnni)
    int8 = spacy.load(int8_pipeline)
    fp32 = spacy.load(tiny_pipeline)
    shim = transformer_shim(int8)
    assert shim.int8_graph is not None and shim.int8_settings["scheme"] == ROW_SCHEME
    assert prediction_runtime(int8) == {"device": "cpu", "precision": "int8"}
    text = fixture_texts()[0]
    exact, quantized = hidden_states(fp32, text), hidden_states(int8, text)
    assert quantized.dtype == numpy.float32 and quantized.shape == exact.shape
    assert not numpy.array_equal(exact, quantized)
    assert cosine_per_token(exact, quantized).min() > 0.99
    # cpu_int8 = false: the same pipeline predicts with torch
    off = load(int8_pipeline, cpu_int8=False)
    assert prediction_runtime(off)["precision"] == "fp32"
    numpy.testing.assert_array_equal(hidden_states(off, text), exact)


def test_the_int8_graph_multiplies_every_weight_in_7_bits_with_row_scales(int8_pipeline):
    """Every product of the encoder with a weight (query, key, value, attention
    output, the two feed-forward layers of each layer) is a per-row int8
    product whose weights stay within [-64, 64], and no float one is left;
    the word embeddings are stored in uint8."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(transformer_shim(spacy.load(int8_pipeline)).int8_graph).graph
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    products = [node for node in graph.node if node.op_type == "MatMulIntegerToFloat"]
    layers = torch_model(transformer_shim(spacy.load(int8_pipeline))).config.num_hidden_layers
    assert len(products) == 6 * layers
    assert not [node for node in graph.node if node.op_type == "MatMul" and node.input[1] in constants]
    for node in products:
        weight = constants[node.input[1]]
        assert weight.dtype == numpy.int8 and -64 <= weight.min() and weight.max() <= 64
        assert weight.max() == 64 or weight.min() == -64  # the scale uses the whole 7-bit range
        assert node.input[2] not in constants  # the activation scale is computed per call, per row
    # the embedding tables are stored in uint8 and looked up with fixed scales
    (embeddings,) = [node for node in graph.node if node.op_type == "QEmbedLayerNormalization"]
    assert constants[embeddings.input[2]].dtype == numpy.uint8


def test_an_int8_graph_scaled_per_call_is_not_used_and_the_pipeline_says_how_to_rebuild(int8_pipeline, monkeypatch):
    """Graphs built before per-row scales: torch predicts, and says so."""
    cpu(monkeypatch)
    monkeypatch.setattr(notices, "_SAID", set())
    nlp = spacy.load(int8_pipeline)
    shim = transformer_shim(nlp)
    shim.set_int8_graph(shim.int8_graph, {"quantization": "onnxruntime quantize_dynamic: activations uint8 per call"})
    with pytest.warns(UserWarning, match="scales activations per call.*spacy project run int8"):
        assert prediction_runtime(nlp)["precision"] == "fp32"
    assert nlp(fixture_texts()[0]).ents is not None


def test_a_copy_of_an_int8_pipeline_predicts_with_a_session_of_its_own(int8_pipeline, monkeypatch):
    """The int8 encoder owns its ONNX Runtime session, which cannot be
    copied: a deep copy carries the graph and makes its own."""
    cpu(monkeypatch)
    nlp = spacy.load(int8_pipeline)
    text = fixture_texts()[0]
    quantized = hidden_states(nlp, text)  # the session is made
    copied = copy.deepcopy(nlp)
    assert prediction_runtime(copied)["precision"] == "int8"
    assert transformer_shim(copied).int8_session() is not transformer_shim(nlp).int8_session()
    assert transformer_shim(copied).int8_graph == transformer_shim(nlp).int8_graph
    numpy.testing.assert_array_equal(hidden_states(copied, text), quantized)


def counted_encoder_calls(nlp, monkeypatch):
    """The rows (windows) of each call of the pipeline's int8 session from
    now on, in a list that grows as it is called."""
    session = transformer_shim(nlp).int8_session()
    rows_per_call = []
    session_run = session.run

    def run(names, feeds):
        rows_per_call.append(len(feeds["input_ids"]))
        return session_run(names, feeds)

    monkeypatch.setattr(session, "run", run, raising=False)
    return rows_per_call


def test_int8_entities_and_outputs_do_not_depend_on_the_batch(int8_pipeline, monkeypatch):
    """Bit for bit at batch sizes 1, 8, 32 and 128, while the encoder is
    called with several windows at a time."""
    cpu(monkeypatch)
    nlp = spacy.load(int8_pipeline)
    words = " ".join(fixture_texts()).split() * 3  # 450 words
    texts = [" ".join(words[start : start + n]) for start, n in zip(range(0, 300, 7), [3, 40, 7, 90, 2] * 9)]
    assert all(texts) and len(texts) > 30
    alone = [nlp(text) for text in texts]
    rows_per_call = counted_encoder_calls(nlp, monkeypatch)
    for batch_size in (1, 8, 32, 128):
        docs = list(nlp.pipe(texts, batch_size=batch_size))
        assert entities(docs) == entities(alone)
        for doc, single in zip(docs, alone):
            numpy.testing.assert_array_equal(
                token_pieces(doc, doc._.trf_data.tensors[0]), token_pieces(single, single._.trf_data.tensors[0])
            )
    assert max(rows_per_call) > 1  # windows were encoded together


def test_the_configs_prediction_sub_batches_give_the_int8_encoder_fuller_calls(int8_pipeline, monkeypatch):
    """configs/transformer.cfg's max_batch_items (spaCy tokens per
    prediction sub-batch) is above spacy-transformers' default, so 10-sentence
    Docs put more windows of one length into one encoder call; the entities
    stay the same."""
    cpu(monkeypatch)
    nlp = spacy.load(int8_pipeline)
    component = nlp.get_pipe("transformer")
    assert component.cfg["max_batch_items"] > SPACY_TRANSFORMERS_MAX_BATCH_ITEMS
    words = (" ".join(fixture_texts()).split() * 2)[:150]  # a Doc of two windows
    texts = [" ".join(words)] * 60  # 9,000 spaCy tokens: more than one default sub-batch
    calls = counted_encoder_calls(nlp, monkeypatch)
    configured = entities(nlp.pipe(texts))
    configured_calls, calls[:] = len(calls), []
    component.cfg["max_batch_items"] = SPACY_TRANSFORMERS_MAX_BATCH_ITEMS
    assert entities(nlp.pipe(texts)) == configured
    assert sum(calls) == 120  # every window, once
    assert configured_calls < len(calls)


def test_the_int8_encoder_loads_in_a_fresh_process_without_exporting(int8_pipeline, tmp_path):
    script = f"""
import subprocess, torch
from conll_ner.pipeline import cpu_features
from conll_ner.pipeline.prediction_runtime import prediction_runtime
def exported(*args, **kwargs):
    raise AssertionError("exported")
torch.onnx.export = subprocess.run = subprocess.Popen = exported
import spacy
nlp = spacy.load({str(int8_pipeline)!r})
docs = list(nlp.pipe({fixture_texts()!r}))
print(len(docs), prediction_runtime(nlp)["precision"])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == [str(len(fixture_texts())), "int8"]


def test_training_drops_the_int8_encoder_and_saving_keeps_the_torch_weights(
    tiny_pipeline, int8_pipeline, monkeypatch, tmp_path
):
    cpu(monkeypatch)
    int8 = spacy.load(int8_pipeline)
    original = torch_model(transformer_shim(spacy.load(tiny_pipeline))).state_dict()
    saved = torch_model(transformer_shim(int8)).state_dict()
    assert original.keys() == saved.keys() and all(torch.equal(original[k], saved[k]) for k in original)
    text = fixture_texts()[0]
    quantized = hidden_states(int8, text)
    # a pipeline that trains scores its dev set with torch: its weights change at every update
    training_step(int8)
    assert transformer_shim(int8).int8_graph is None and prediction_runtime(int8)["precision"] == "fp32"
    assert not numpy.array_equal(hidden_states(int8, text), quantized)
    int8.to_disk(tmp_path / "trained")
    assert transformer_shim(spacy.load(tmp_path / "trained")).int8_graph is None


def test_the_int8_build_of_an_xlm_roberta_encoder(tmp_path, monkeypatch):
    """XLM-R's position ids start after its padding id and its vocabulary is
    a SentencePiece one: the export takes it as it takes BERT."""
    pytest.importorskip("onnxruntime", reason="the int8 build needs onnxruntime and onnx (requirements-onnx.txt)")
    cpu(monkeypatch)
    pipeline = build_tiny_transformer_pipeline(tmp_path / "xlmr", encoder="xlmr")
    int8_build.write_int8_pipeline(pipeline, tmp_path / "int8")
    text = fixture_texts()[0]
    exact, quantized = hidden_states(spacy.load(pipeline), text), hidden_states(spacy.load(tmp_path / "int8"), text)
    assert not numpy.array_equal(exact, quantized)
    assert cosine_per_token(exact, quantized).min() > 0.99


def test_without_onnxruntime_the_int8_pipeline_predicts_with_torch_and_says_so_once(int8_pipeline, tmp_path):
    script = f"""
import sys, warnings
sys.modules["onnxruntime"] = None  # not installed
import spacy
from conll_ner.pipeline import cpu_features
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as said:
    nlp = spacy.load({str(int8_pipeline)!r})
    docs = [nlp(text) for text in {fixture_texts()[:3]!r}]
print(len(docs), sum("onnxruntime is not installed" in str(w.message) for w in said))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["3", "1"]


def test_the_int8_build_refuses_what_it_cannot_serve(tiny_pipeline, monkeypatch, tmp_path):
    nlp = spacy.load(tiny_pipeline)
    monkeypatch.setattr(int8_build, "INT8_MAX_WEIGHT_BYTES", 1000)  # the tiny BERT's weights take more
    with pytest.raises(ValueError, match="weights take 0.0 GB, over the 2 GB of an ONNX file"):
        int8_build.add_int8_encoder(nlp)
    with pytest.raises(ValueError, match="no transformer built by conll_ner.TransformerModel.v1"):
        int8_build.add_int8_encoder(spacy.blank("en"))
    # a failed build leaves the folder as it was
    monkeypatch.setattr(int8_build, "INT8_MAX_WEIGHT_BYTES", 2 * 1024**3)

    def export_fails(encoder):
        raise RuntimeError("the process building the int8 encoder exited with -9 (killed: out of memory?)")

    monkeypatch.setattr(int8_build, "export_in_child", export_fails)
    before = sorted(p.name for p in tiny_pipeline.rglob("*"))
    with pytest.raises(RuntimeError, match="out of memory"):
        int8_build.write_int8_pipeline(tiny_pipeline, tiny_pipeline)
    assert sorted(p.name for p in tiny_pipeline.rglob("*")) == before
    assert [p.name for p in tiny_pipeline.parent.iterdir() if p.name.startswith(".")] == []


def test_a_failed_export_process_says_why(tmp_path):
    class NotAHuggingFaceModel(torch.nn.Linear):
        def save_pretrained(self, folder):
            (tmp_path / "saved").write_text("called")

    with pytest.raises(RuntimeError, match="the process building the int8 encoder exited with 1: .*"):
        int8_build.export_in_child(NotAHuggingFaceModel(2, 2))
    assert (tmp_path / "saved").read_text() == "called"


def test_the_int8_command_builds_into_the_pipeline_folder(tiny_pipeline, tmp_path):
    pytest.importorskip("onnxruntime", reason="the int8 build needs onnxruntime and onnx (requirements-onnx.txt)")
    result = subprocess.run(
        [sys.executable, "scripts/int8.py", str(tiny_pipeline), "--output", str(tmp_path / "served")],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert transformer_shim(spacy.load(tmp_path / "served")).int8_graph is not None
    assert transformer_shim(spacy.load(tiny_pipeline)).int8_graph is None


# pipelines trained before conll_ner.TransformerModel.v1


@pytest.fixture(scope="module")
def legacy_pipeline(tiny_pipeline, tmp_path_factory):
    """The tiny pipeline as pipelines trained before the architecture were
    configured: spacy-transformers' model and the CPU callback."""
    path = tmp_path_factory.mktemp("legacy") / "pipeline"
    shutil.copytree(tiny_pipeline, path)
    config = load_config(path / "config.cfg")
    model = config["components"]["transformer"]["model"]
    model["@architectures"] = "spacy-transformers.TransformerModel.v3"
    # the settings of conll_ner.TransformerModel.v1, which legacy configs never had
    for key in [key for key in model if key.startswith("cpu_") or key == "freeze_word_embeddings_above"]:
        del model[key]
    config["nlp"]["after_pipeline_creation"] = {"@callbacks": "conll_ner.transformer_on_cpu.v1", "int8": True}
    config.to_disk(path / "config.cfg")
    return path


def test_a_legacy_pipeline_loads_predicts_in_fp32_and_says_how_to_migrate(legacy_pipeline, monkeypatch):
    monkeypatch.setattr(notices, "_SAID", set())
    with pytest.warns(UserWarning, match="python scripts/int8.py <pipeline>"):
        nlp = spacy.load(legacy_pipeline)
    assert type(transformer_shim(nlp)) is not CPUTransformerShim
    assert prediction_runtime(nlp)["precision"] == "fp32"
    assert len(nlp(fixture_texts()[0])) > 0


def test_the_int8_build_migrates_a_legacy_pipeline(legacy_pipeline, tiny_pipeline, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="the int8 build needs onnxruntime and onnx (requirements-onnx.txt)")
    cpu(monkeypatch)
    int8_build.write_int8_pipeline(legacy_pipeline, tmp_path / "migrated")
    nlp = spacy.load(tmp_path / "migrated")
    assert nlp.config["components"]["transformer"]["model"]["@architectures"] == "conll_ner.TransformerModel.v1"
    assert nlp.config["nlp"]["after_pipeline_creation"] == {"@callbacks": "conll_ner.numpy_matmul_on_cpu.v2"}
    assert prediction_runtime(nlp)["precision"] == "int8"
    exact = hidden_states(spacy.load(tiny_pipeline), fixture_texts()[0])
    assert cosine_per_token(exact, hidden_states(nlp, fixture_texts()[0])).min() > 0.99


# torch predictions in groups of windows of similar length


def test_length_groups_sort_rows_and_stay_within_the_token_budget():
    lengths = [5, 30, 7, 30, 12, 100]
    # 3 x 12 and 2 x 30 padded tokens fit 64; 100 is a group of its own
    assert length_groups(lengths, 64) == [[0, 2, 4], [1, 3], [5]]
    assert length_groups(lengths, 10_000) == [[0, 2, 4, 1, 3, 5]]
    assert length_groups([], 64) == []


def test_equal_length_groups_need_no_padding_and_stay_within_the_token_budget():
    lengths = [5, 30, 5, 30, 30, 100, 5]
    assert equal_length_groups(lengths, 64) == [[0, 2, 6], [1, 3], [4], [5]]
    assert equal_length_groups(lengths, 0) == [[0, 2, 6], [1, 3, 4], [5]]
    assert equal_length_groups([], 64) == []


def token_pieces(doc, hidden):
    """The encoder's outputs at the word pieces of the doc's tokens: padding
    positions are not outputs of the tokens."""
    return hidden.reshape(-1, hidden.shape[-1])[doc._.trf_data.align.data.ravel()]


@pytest.fixture
def encoder_calls(monkeypatch):
    """The shape of every input the torch encoder is called with."""
    from thinc.shims import PyTorchShim

    shapes = []
    predict = PyTorchShim.predict

    def counting_predict(self, inputs):
        shapes.append(tuple(inputs.kwargs["input_ids"].shape))
        return predict(self, inputs)

    monkeypatch.setattr(PyTorchShim, "predict", counting_predict)
    return shapes


def test_length_groups_predict_what_one_call_per_batch_predicts(tiny_pipeline, monkeypatch, encoder_calls):
    cpu(monkeypatch)
    words = fixture_texts()[0].split() * 6  # 300 words
    texts = [
        " ".join(words[start : start + n])
        for start, n in zip(range(0, 240, 20), [3, 25, 7, 40, 12, 5, 30, 9, 18, 2, 60, 11])
    ]
    one_call = load(tiny_pipeline, cpu_token_budget=0)
    whole = [doc._.trf_data.tensors[0].copy() for doc in one_call.pipe(texts, batch_size=len(texts))]
    assert len(encoder_calls) == 1
    rows, padded_length = encoder_calls.pop()
    docs = list(load(tiny_pipeline, cpu_token_budget=64).pipe(texts, batch_size=len(texts)))
    # several calls, each on rows of similar length cut to the longest of
    # them, together fewer padded tokens than the one call of the batch
    assert len(encoder_calls) > 1 and sum(r for r, _ in encoder_calls) == rows
    assert all(r * length <= 64 or r == 1 for r, length in encoder_calls)
    assert sum(r * length for r, length in encoder_calls) < rows * padded_length
    for doc, expected in zip(docs, whole):
        numpy.testing.assert_allclose(
            token_pieces(doc, doc._.trf_data.tensors[0]), token_pieces(doc, expected), atol=1e-5
        )
    assert entities(docs) == entities(one_call.pipe(texts, batch_size=len(texts)))


def test_evaluation_names_the_precision_it_was_computed_in(tiny_pipeline, monkeypatch, tmp_path):
    from spacy.tokens import DocBin

    from conll_ner.evaluation.metrics import evaluate_docbin

    cpu(monkeypatch, bfloat16=True)
    sentences = spacy.blank("en")
    sentences.add_pipe("sentencizer")
    DocBin(docs=[sentences(text) for text in fixture_texts()]).to_disk(tmp_path / "dev.spacy")
    metrics, _ = evaluate_docbin(spacy.load(tiny_pipeline), tmp_path / "dev.spacy")
    assert metrics["runtime"] == {"device": "cpu", "precision": "bfloat16"}
    metrics, _ = evaluate_docbin(spacy.blank("en"), tmp_path / "dev.spacy")
    assert metrics["runtime"] == {"device": "cpu", "precision": "fp32"}


# parameter averages (use_averages) reach the encoder


def test_the_optimizers_averages_replace_the_encoders_weights_inside_use_params(tiny_pipeline, monkeypatch, tmp_path):
    """thinc's optimizer keys the encoder's averages by (shim id, name);
    inside nlp.use_params the encoder computes with them, frozen word
    embeddings (no average) keep their weights, and the trained weights
    come back after the block."""
    cpu(monkeypatch)
    rows = torch_model(transformer_shim(spacy.load(tiny_pipeline))).get_input_embeddings().weight.shape[0]
    nlp = load(tiny_pipeline, freeze_word_embeddings_above=rows - 1)
    shim = transformer_shim(nlp)
    encoder = torch_model(shim)
    optimizer = Adam(0.01, use_averages=True)
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": []}) for text in fixture_texts()[:4]]
    for _ in range(4):
        nlp.update(examples, sgd=optimizer, losses={})
    trained = {name: value.detach().clone() for name, value in encoder.named_parameters()}
    averaged = {name: optimizer.averages[(shim.id, name)] for name in trained if (shim.id, name) in optimizer.averages}
    word_embeddings = "embeddings.word_embeddings.weight"
    assert word_embeddings not in averaged and "encoder.layer.0.attention.self.query.weight" in averaged
    assert any(not numpy.array_equal(average, trained[name].numpy()) for name, average in averaged.items())
    text = fixture_texts()[0]
    before = hidden_states(nlp, text)
    with nlp.use_params(optimizer.averages):
        inside = dict(encoder.named_parameters())
        for name, average in averaged.items():
            numpy.testing.assert_array_equal(inside[name].detach().numpy(), average, err_msg=name)
        assert torch.equal(inside[word_embeddings], trained[word_embeddings])
        assert not numpy.allclose(hidden_states(nlp, text), before)
        nlp.to_disk(tmp_path / "averaged")
    for name, value in encoder.named_parameters():
        assert torch.equal(value, trained[name]), name
    numpy.testing.assert_array_equal(hidden_states(nlp, text), before)
    saved = dict(torch_model(transformer_shim(spacy.load(tmp_path / "averaged"))).named_parameters())
    for name, average in averaged.items():
        numpy.testing.assert_array_equal(saved[name].detach().numpy(), average, err_msg=name)

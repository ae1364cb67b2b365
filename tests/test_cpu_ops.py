import copy
import os
import subprocess
import sys

import numpy
import pytest
import spacy
import torch
from conftest import PROJECT_DIR
from spacy.util import load_config, load_model_from_config
from thinc.api import ArgsKwargs, NumpyOps, get_current_ops, set_current_ops
from tiny_models import build_tiny_transformer_pipeline, fixture_texts

from conll_ner.inference import cpu_ops


@pytest.fixture
def blis_ops():
    previous = get_current_ops()
    set_current_ops(NumpyOps(use_blis=True))
    yield
    set_current_ops(previous)


@pytest.mark.parametrize("config", ["cnn", "transformer"])
def test_creating_a_pipeline_switches_cpu_ops_to_numpy_blas(blis_ops, config):
    assert get_current_ops().use_blis
    cfg = load_config(PROJECT_DIR / "configs" / f"{config}.cfg")
    if config != "cnn":  # building the transformer would need a checkpoint
        cfg["components"] = {}
        cfg["nlp"]["pipeline"] = []
    load_model_from_config(cfg, auto_fill=True, validate=False)
    ops = get_current_ops()
    assert type(ops) is NumpyOps and not ops.use_blis


def test_numpy_matmul_gives_the_same_products(blis_ops):
    a, b = numpy.random.rand(50, 40).astype("f"), numpy.random.rand(40, 30).astype("f")
    numpy.testing.assert_allclose(NumpyOps(use_blis=False).gemm(a, b), NumpyOps(use_blis=True).gemm(a, b), rtol=1e-5)


@pytest.fixture(scope="module")
def tiny_transformer_nlp(tmp_path_factory):
    return build_tiny_transformer_pipeline(tmp_path_factory.mktemp("bf16"))


def transformer_shim(nlp):
    return nlp.get_pipe("transformer").model.layers[0].shims[0]


def hidden_states(nlp, text):
    return nlp(text)._.trf_data.tensors[0]


def load_on_cpu(path, monkeypatch, bfloat16, int8=False, token_budget=1024, vnni=True):
    """The pipeline with conll_ner.transformer_on_cpu.v1 as given, on a CPU
    with or without native bfloat16 and VNNI."""
    monkeypatch.setattr(cpu_ops, "cpu_computes_bfloat16", lambda: bfloat16)
    monkeypatch.setattr(cpu_ops, "cpu_computes_int8", lambda: vnni)
    after = {
        "@callbacks": "conll_ner.transformer_on_cpu.v1",
        "training": True,
        "int8": int8,
        "token_budget": token_budget,
    }
    return spacy.load(path, config={"nlp": {"after_pipeline_creation": after}})


def load_with_bfloat16(path, monkeypatch, supported):
    return load_on_cpu(path, monkeypatch, bfloat16=supported)


def test_transformer_predicts_in_bfloat16_on_a_cpu_that_supports_it(tiny_transformer_nlp, monkeypatch):
    fp32 = load_with_bfloat16(tiny_transformer_nlp, monkeypatch, supported=False)
    bf16 = load_with_bfloat16(tiny_transformer_nlp, monkeypatch, supported=True)
    assert not isinstance(transformer_shim(fp32), cpu_ops.BFloat16PredictOnCPU)
    assert isinstance(transformer_shim(bf16), cpu_ops.BFloat16PredictOnCPU)
    text = fixture_texts()[0]
    exact, rounded = hidden_states(fp32, text), hidden_states(bf16, text)
    # float32 for numpy, and the same weights (loaded by from_disk after the
    # class swap) computed with bfloat16's 8-bit mantissa: close, not equal
    assert rounded.dtype == numpy.float32
    assert not numpy.array_equal(exact, rounded)
    numpy.testing.assert_allclose(rounded, exact, atol=0.1)
    assert [t.ent_iob_ for t in bf16(text)] and len(bf16(text)) == len(fp32(text))


def test_bfloat16_shim_survives_deep_copy(tiny_transformer_nlp, monkeypatch):
    nlp = load_with_bfloat16(tiny_transformer_nlp, monkeypatch, supported=True)
    copied = copy.deepcopy(nlp)
    assert isinstance(transformer_shim(copied), cpu_ops.BFloat16TrainOnCPU)
    numpy.testing.assert_array_equal(hidden_states(copied, fixture_texts()[0]), hidden_states(nlp, fixture_texts()[0]))


def training_step(nlp):
    """One forward and backward pass of the transformer's shim, as a training
    update makes it: the outputs handed to thinc and the gradient of the word
    embeddings."""
    shim = transformer_shim(nlp)
    shim._model.zero_grad()
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
    embeddings = shim._model.embeddings.word_embeddings.weight
    return hidden.detach(), embeddings.grad.clone()


@pytest.mark.parametrize("training", [True, False])
def test_training_steps_in_bfloat16_unless_switched_off(tiny_transformer_nlp, monkeypatch, training):
    monkeypatch.setattr(cpu_ops, "cpu_computes_bfloat16", lambda: True)
    after = {"@callbacks": "conll_ner.bfloat16_transformer_on_cpu.v1", "training": training}
    nlp = spacy.load(tiny_transformer_nlp, config={"nlp": {"after_pipeline_creation": after}})
    fp32 = load_with_bfloat16(tiny_transformer_nlp, monkeypatch, supported=False)
    shim = transformer_shim(nlp)
    assert isinstance(shim, cpu_ops.BFloat16PredictOnCPU)
    assert isinstance(shim, cpu_ops.BFloat16TrainOnCPU) is training
    outputs, gradient = training_step(nlp)
    exact_outputs, exact_gradient = training_step(fp32)
    # fp32 outputs for thinc, computed in bfloat16 (close, not equal) and
    # differentiable through the cast: the gradients reach the embeddings
    assert outputs.dtype == torch.float32
    assert torch.equal(outputs, exact_outputs) is not training
    torch.testing.assert_close(outputs, exact_outputs, atol=0.1, rtol=0)
    assert gradient.abs().sum() > 0
    assert float((gradient - exact_gradient).norm() / exact_gradient.norm()) < 0.05


def test_configs_mixed_precision_trains_in_fp32_on_the_cpu(tiny_transformer_nlp):
    """configs/transformer.cfg asks for mixed precision (for GPUs); on the CPU
    thinc's grad scaler would raise at the first update."""
    nlp = spacy.load(tiny_transformer_nlp)
    assert nlp.config["components"]["transformer"]["model"]["mixed_precision"] is True
    shim = transformer_shim(nlp)
    assert not shim._mixed_precision and not shim._grad_scaler._enabled
    from spacy.training import Example

    text = fixture_texts()[0]
    losses = nlp.update([Example.from_dict(nlp.make_doc(text), {"entities": []})], losses={})
    assert numpy.isfinite(losses["transformer"])


# int8 predictions through ONNX Runtime

INT8 = {"@callbacks": "conll_ner.transformer_on_cpu.v1", "training": True, "int8": True}


def load_with_int8(path, monkeypatch, cache, bfloat16=True, token_budget=1024):
    pytest.importorskip("onnxruntime", reason="the int8 path needs onnxruntime (requirements-onnx.txt)")
    monkeypatch.setenv("CONLL_NER_CACHE", str(cache))
    return load_on_cpu(path, monkeypatch, bfloat16=bfloat16, int8=True, token_budget=token_budget)


def test_the_config_predicts_in_int8_in_length_groups_by_default(tiny_transformer_nlp, monkeypatch):
    monkeypatch.setattr(cpu_ops, "cpu_computes_bfloat16", lambda: True)
    monkeypatch.setattr(cpu_ops, "cpu_computes_int8", lambda: True)
    shim = transformer_shim(spacy.load(tiny_transformer_nlp))
    assert isinstance(shim, cpu_ops.LengthGroupedPredictOnCPU) and shim._cpu_token_budget == 1024
    assert isinstance(shim, cpu_ops.Int8PredictOnCPU) and isinstance(shim, cpu_ops.BFloat16TrainOnCPU)
    # the documented switch-off: bfloat16 (or fp32) predictions with torch
    off = load_on_cpu(tiny_transformer_nlp, monkeypatch, bfloat16=True, int8=False)
    assert not isinstance(transformer_shim(off), cpu_ops.Int8PredictOnCPU)
    # CPUs without VNNI or AMX, where int8 sums can saturate, predict with torch
    old_cpu = load_on_cpu(tiny_transformer_nlp, monkeypatch, bfloat16=False, int8=True, vnni=False)
    assert isinstance(transformer_shim(old_cpu), cpu_ops.LengthGroupedPredictOnCPU)
    assert not isinstance(transformer_shim(old_cpu), cpu_ops.Int8PredictOnCPU)


def cosine_per_token(a, b):
    return (a * b).sum(-1) / (numpy.linalg.norm(a, axis=-1) * numpy.linalg.norm(b, axis=-1))


def test_int8_predictions_stay_close_to_fp32(tiny_transformer_nlp, monkeypatch, tmp_path):
    fp32 = load_with_bfloat16(tiny_transformer_nlp, monkeypatch, supported=False)
    int8 = load_with_int8(tiny_transformer_nlp, monkeypatch, tmp_path / "cache")
    shim = transformer_shim(int8)
    assert isinstance(shim, cpu_ops.Int8PredictOnCPU) and isinstance(shim, cpu_ops.BFloat16TrainOnCPU)
    text = fixture_texts()[0]
    exact, quantized = hidden_states(fp32, text), hidden_states(int8, text)
    # an int8 graph of these weights ran (kept in the cache for the next
    # load), and its outputs point the same way as fp32's, token by token
    assert len(list((tmp_path / "cache" / "onnx_int8").glob("*.onnx"))) == 1
    assert quantized.dtype == numpy.float32 and quantized.shape == exact.shape
    assert not numpy.array_equal(exact, quantized)
    assert cosine_per_token(exact, quantized).min() > 0.99
    assert len(int8(text)) == len(fp32(text))


def test_int8_predictions_of_an_xlm_roberta_encoder_stay_close_to_fp32(tmp_path, monkeypatch):
    """XLM-R's position ids start after its padding id and its vocabulary is
    a SentencePiece one: the export takes it as it takes BERT."""
    pipeline = build_tiny_transformer_pipeline(tmp_path / "xlmr", encoder="xlmr")
    fp32 = load_with_bfloat16(pipeline, monkeypatch, supported=False)
    int8 = load_with_int8(pipeline, monkeypatch, tmp_path / "cache")
    text = fixture_texts()[0]
    exact, quantized = hidden_states(fp32, text), hidden_states(int8, text)
    assert len(list((tmp_path / "cache" / "onnx_int8").glob("*.onnx"))) == 1
    assert not numpy.array_equal(exact, quantized)
    assert cosine_per_token(exact, quantized).min() > 0.99


def test_an_int8_pipeline_saves_its_torch_weights(tiny_transformer_nlp, monkeypatch, tmp_path):
    int8 = load_with_int8(tiny_transformer_nlp, monkeypatch, tmp_path / "cache")
    int8(fixture_texts()[0])
    int8.to_disk(tmp_path / "saved")
    original = transformer_shim(
        load_with_bfloat16(tiny_transformer_nlp, monkeypatch, supported=False)
    )._model.state_dict()
    reloaded = transformer_shim(
        load_with_bfloat16(tmp_path / "saved", monkeypatch, supported=False)
    )._model.state_dict()
    assert original.keys() == reloaded.keys()
    assert all(torch.equal(original[name], reloaded[name]) for name in original)


def test_training_steps_and_new_weights_drop_the_int8_graph(tiny_transformer_nlp, monkeypatch, tmp_path):
    int8 = load_with_int8(tiny_transformer_nlp, monkeypatch, tmp_path / "cache")
    bf16 = load_with_bfloat16(tiny_transformer_nlp, monkeypatch, supported=True)
    text = fixture_texts()[0]
    assert not numpy.array_equal(hidden_states(int8, text), hidden_states(bf16, text))
    # a pipeline that trains scores its dev set with torch: its weights change at every update
    training_step(int8)
    numpy.testing.assert_array_equal(hidden_states(int8, text), hidden_states(bf16, text))
    # loading weights makes it a predicting pipeline again
    int8.get_pipe("transformer").from_bytes(bf16.get_pipe("transformer").to_bytes())
    assert not numpy.array_equal(hidden_states(int8, text), hidden_states(bf16, text))


def test_without_onnxruntime_the_pipeline_predicts_with_torch_and_says_so_once(tiny_transformer_nlp, tmp_path):
    script = f"""
import sys, warnings
sys.modules["onnxruntime"] = None  # not installed
import spacy
from conll_ner.inference import cpu_ops
cpu_ops.cpu_computes_int8 = lambda: True  # a CPU with VNNI, where int8 would run
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as said:
    nlp = spacy.load({str(tiny_transformer_nlp)!r}, config={{"nlp": {{"after_pipeline_creation": {INT8!r}}}}})
    docs = [nlp(text) for text in {fixture_texts()[:3]!r}]
print(len(docs), sum("onnxruntime is not installed" in str(w.message) for w in said))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "CONLL_NER_CACHE": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["3", "1"]
    assert not (tmp_path / "cache").exists()


def test_an_encoder_that_cannot_be_exported_predicts_with_torch(tiny_transformer_nlp, monkeypatch, tmp_path):
    int8 = load_with_int8(tiny_transformer_nlp, monkeypatch, tmp_path / "cache")
    bf16 = load_with_bfloat16(tiny_transformer_nlp, monkeypatch, supported=True)

    def export_fails(module, path):
        raise RuntimeError("protobuf over 2 GB")

    monkeypatch.setattr(cpu_ops, "export_int8_graph_in_child", export_fails)
    monkeypatch.setattr(cpu_ops, "_SAID", set())
    text = fixture_texts()[0]
    with pytest.warns(UserWarning, match="no int8 graph for this transformer .RuntimeError: protobuf over 2 GB"):
        hidden = hidden_states(int8, text)
    numpy.testing.assert_array_equal(hidden, hidden_states(bf16, text))


# batches in groups of windows of similar length


def test_length_groups_sort_rows_and_stay_within_the_token_budget():
    lengths = [5, 30, 7, 30, 12, 100]
    # 3 x 12 and 2 x 30 padded tokens fit 64; 100 is a group of its own
    assert cpu_ops.length_groups(lengths, 64) == [[0, 2, 4], [1, 3], [5]]
    assert cpu_ops.length_groups(lengths, 10_000) == [[0, 2, 4, 1, 3, 5]]
    assert cpu_ops.length_groups([], 64) == []


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


def test_length_groups_predict_what_one_call_per_batch_predicts(tiny_transformer_nlp, monkeypatch, encoder_calls):
    words = fixture_texts()[0].split() * 6  # 300 words
    texts = [
        " ".join(words[start : start + n])
        for start, n in zip(range(0, 240, 20), [3, 25, 7, 40, 12, 5, 30, 9, 18, 2, 60, 11])
    ]
    one_call = load_on_cpu(tiny_transformer_nlp, monkeypatch, bfloat16=False, token_budget=0)
    whole = [doc._.trf_data.tensors[0] for doc in one_call.pipe(texts, batch_size=len(texts))]
    whole = [tensor.copy() for tensor in whole]
    assert len(encoder_calls) == 1
    rows, padded_length = encoder_calls.pop()
    grouped_nlp = load_on_cpu(tiny_transformer_nlp, monkeypatch, bfloat16=False, token_budget=64)
    docs = list(grouped_nlp.pipe(texts, batch_size=len(texts)))
    # several calls, each on rows of similar length cut to the longest of
    # them, together fewer padded tokens than the one call of the batch
    assert len(encoder_calls) > 1 and sum(r for r, _ in encoder_calls) == rows
    assert all(r * length <= 64 or r == 1 for r, length in encoder_calls)
    assert sum(r * length for r, length in encoder_calls) < rows * padded_length
    for doc, expected in zip(docs, whole):
        numpy.testing.assert_allclose(
            token_pieces(doc, doc._.trf_data.tensors[0]), token_pieces(doc, expected), atol=1e-5
        )
    assert [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs] == [
        [(e.start, e.end, e.label_) for e in doc.ents] for doc in one_call.pipe(texts, batch_size=len(texts))
    ]


def test_an_encoder_over_two_gigabytes_predicts_with_torch_without_exporting(
    tiny_transformer_nlp, monkeypatch, tmp_path
):
    int8 = load_with_int8(tiny_transformer_nlp, monkeypatch, tmp_path / "cache")
    bf16 = load_with_bfloat16(tiny_transformer_nlp, monkeypatch, supported=True)
    monkeypatch.setattr(cpu_ops, "INT8_MAX_WEIGHT_BYTES", 1000)  # the tiny BERT's weights take more
    monkeypatch.setattr(cpu_ops, "_SAID", set())
    text = fixture_texts()[0]
    with pytest.warns(UserWarning, match="no int8 graph for this transformer .ValueError: its weights take 0.0 GB"):
        hidden = hidden_states(int8, text)
    numpy.testing.assert_array_equal(hidden, hidden_states(bf16, text))
    assert not (tmp_path / "cache").exists()


def test_a_failed_export_process_says_why(monkeypatch, tmp_path):
    """The graph is built in a child process: when the child dies (here: an
    encoder that is not a Hugging Face model), the pipeline's process raises
    with the child's exit code, which the int8 path turns into torch predictions."""

    class NotAHuggingFaceModel(torch.nn.Linear):
        def save_pretrained(self, folder):
            (tmp_path / "saved").write_text("called")

    with pytest.raises(RuntimeError, match="the process building it exited with 1: .*"):
        cpu_ops.export_int8_graph_in_child(NotAHuggingFaceModel(2, 2), tmp_path / "cache" / "x.onnx")
    assert (tmp_path / "saved").read_text() == "called"
    assert not (tmp_path / "cache" / "x.onnx").exists()

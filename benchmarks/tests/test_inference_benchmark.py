"""The inference mode of the benchmark: its variants, its measuring
processes on tiny models, and its report."""

import json
import subprocess
import sys

import cpu_inference
import hf_baseline
import pytest
import spacy
from corpora import N_SENTS
from fixtures import ENGLISH_TRAIN
from modes import inference
from processes import BENCH_DIR, PROJECT_DIR
from spacy.tokens import Doc
from tiny_models import build_tiny_bert, build_tiny_transformer_pipeline, fixture_texts
from transformers import AutoModelForTokenClassification, AutoTokenizer

from conll_ner.data.conll import read_conll_file
from conll_ner.data.docbin import conll_to_docbin


def test_each_variant_changes_one_cpu_setting_of_the_config(tmp_path):
    variants = cpu_inference.our_variants(window=128)
    assert cpu_inference.default_variant(variants) == "int8" and variants["int8"] == {}
    model = lambda name: variants[name]["components"]["transformer"]["model"]  # noqa: E731
    assert model("fp32") == {"cpu_int8": False, "cpu_bfloat16": False}
    assert model("bf16") == {"cpu_int8": False}
    assert model("bf16, one call per batch") == {"cpu_int8": False, "cpu_token_budget": 0}
    assert model("int8, windows without overlap (stride 128)") == {"get_spans": {"stride": 128}}
    # every variant loads the shipped config's pipeline as it says
    pipeline = build_tiny_transformer_pipeline(tmp_path)
    shim = spacy.load(pipeline, config=variants["bf16, one call per batch"]).get_pipe("transformer").model.layers[0]
    assert (shim.shims[0].int8, shim.shims[0].bfloat16, shim.shims[0].token_budget) == (False, True, 0)


def run_measure(*args, output):
    command = [
        sys.executable,
        str(BENCH_DIR / "cpu_inference.py"),
        *args,
        "--threads",
        "1",
        "--output-json",
        str(output),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_DIR)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(output.read_text())


@pytest.fixture(scope="module")
def dev_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("dev")
    (root / "dev.conll").write_text(ENGLISH_TRAIN)
    doc_bin, _ = conll_to_docbin(
        read_conll_file(root / "dev.conll").sentences, spacy.blank("en").vocab, n_sents=N_SENTS
    )
    doc_bin.to_disk(root / "dev.spacy")
    return root


def test_a_cpu_without_native_bfloat16_leaves_the_bfloat16_variants_out_and_says_why():
    variants = cpu_inference.our_variants(64)
    assert inference.variants_for_this_cpu(variants, True) == (variants, ("fp32", "bf16"), {})
    kept, precisions, skipped = inference.variants_for_this_cpu(variants, False)
    assert set(kept) == {"fp32", "int8", "int8, windows without overlap (stride 64)"} and precisions == ("fp32",)
    assert set(skipped) == {"bf16", "bf16, one call per batch", "Hugging Face pipeline, bf16"}
    assert all("no native bfloat16" in why for why in skipped.values())


def test_measure_ours_times_every_input_and_logs_the_encoders_input(tmp_path, dev_files):
    pytest.importorskip("onnxruntime", reason="the default variant predicts in int8 (requirements-onnx.txt)")
    model = build_tiny_transformer_pipeline(tmp_path)
    measured = run_measure(
        "measure-ours",
        "--model",
        str(model),
        "--variant",
        "int8",
        "--sentences",
        str(dev_files / "dev.conll"),
        "--documents",
        str(dev_files / "dev.spacy"),
        "--score",
        output=tmp_path / "ours.json",
    )
    # the pipeline's own batch, from the config it was built with
    assert measured["batch_size"] == spacy.load(model).batch_size == 1024 and measured["torch_threads"] == 1
    assert set(measured["words_per_second"]) == {"raw_text", "pretokenized", "documents"}
    words = sum(len(sentence.words) for sentence in read_conll_file(dev_files / "dev.conll").sentences)
    assert measured["n_words"] == {"raw_text": words, "pretokenized": words, "documents": words}
    assert 0 <= measured["dev"]["f1"] <= 1 and 0 < measured["peak_rss_mb"] < 8192
    for stats in measured["encoder_input"].values():
        # windows add [CLS] and [SEP] to the subwords
        assert 1 <= stats["subwords_per_word"] < stats["encoder_tokens_per_word"]
        assert 0 <= stats["padding_share"] <= stats["padding_share_one_call"] < 1


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    return build_tiny_transformer_pipeline(tmp_path_factory.mktemp("tiny"))


def test_the_profile_finds_each_part_inside_its_parent(tiny_pipeline, tmp_path, dev_files):
    model = tiny_pipeline
    profile = run_measure(
        "profile-ours",
        "--model",
        str(model),
        "--variant",
        "bf16",
        "--sentences",
        str(dev_files / "dev.conll"),
        "--documents",
        str(dev_files / "dev.spacy"),
        output=tmp_path / "profile.json",
    )
    for kind in ("raw_text", "documents"):
        parts = profile[kind]
        assert set(parts) == {"total", cpu_inference.TRANSFORMER_REST, *cpu_inference.PROFILE_PARTS}
        inside = ("subword tokenization", "encoder calls", cpu_inference.TRANSFORMER_REST)
        # every function was found (a renamed one would read 0) and sits inside its parent
        assert all(0 < parts[part] for part in inside)
        assert sum(parts[part] for part in inside) == pytest.approx(parts["transformer component"])
        assert parts["transformer component"] < parts["total"]
        assert 0 < parts["spaCy tokenizer (text to Doc)"] < parts["total"]


def test_batch_consistency_compares_each_batch_size_with_batch_one(tiny_pipeline, tmp_path, dev_files):
    model = tiny_pipeline
    measured = run_measure(
        "batch-consistency",
        "--model",
        str(model),
        "--variant",
        "bf16",
        "--sentences",
        str(dev_files / "dev.conll"),
        output=tmp_path / "consistency.json",
    )
    assert measured["runtime"]["device"] == "cpu"
    assert set(measured["share_differing"]) == set(measured["differing"]) == {"8", "32", "128"}
    assert measured["sentences"] == len(read_conll_file(dev_files / "dev.conll").sentences)
    # torch in length groups: the same values for every real token, so the same entities
    assert measured["differing"] == {"8": 0, "32": 0, "128": 0}


def test_encoder_input_counts_what_the_encoder_is_given(tmp_path, monkeypatch):
    from thinc.shims import PyTorchShim

    model = build_tiny_transformer_pipeline(tmp_path)
    nlp = spacy.load(model, config={"components.transformer.model.cpu_token_budget": 64})
    words = fixture_texts()[0].split() * 6  # 300 words
    lengths = [3, 25, 7, 40, 12, 5, 30, 9, 18, 2, 60, 11]
    docs = [Doc(nlp.vocab, words=words[start : start + n]) for start, n in zip(range(0, 240, 20), lengths)]
    stats = cpu_inference.encoder_input(nlp, docs, batch_size=6)
    calls = []
    predict = PyTorchShim.predict

    def recording_predict(self, inputs):
        mask = inputs.kwargs["attention_mask"]
        calls.append((mask.numel(), int(mask.sum())))
        return predict(self, inputs)

    monkeypatch.setattr(PyTorchShim, "predict", recording_predict)
    list(nlp.pipe(docs, batch_size=6))
    real, padded = sum(r for _, r in calls), sum(c for c, _ in calls)
    assert stats["encoder_tokens_per_word"] * sum(lengths) == pytest.approx(real)
    assert stats["padding_share"] == pytest.approx(1 - real / padded)
    assert stats["padding_share"] < stats["padding_share_one_call"]


def tiny_token_classifier(tmp_path):
    """A tiny BERT with a CoNLL token-classification head, saved as the Trainer saves it."""
    bert = build_tiny_bert(tmp_path / "bert", fixture_texts())
    labels = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    model = AutoModelForTokenClassification.from_pretrained(
        bert,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    model.save_pretrained(tmp_path / "hf")
    AutoTokenizer.from_pretrained(bert).save_pretrained(tmp_path / "hf")
    return tmp_path / "hf"


def test_measure_hf_runs_the_pipeline_and_the_pretokenized_loop(tmp_path, dev_files):
    tiny_token_classifier(tmp_path)
    for kind, batch in (("raw_text", "0"), ("pretokenized", "4")):
        measured = run_measure(
            "measure-hf",
            "--model-dir",
            str(tmp_path / "hf"),
            "--precision",
            "bf16",
            "--batch-size",
            batch,
            "--input",
            kind,
            "--sentences",
            str(dev_files / "dev.conll"),
            "--score",
            output=tmp_path / f"{kind}.json",
        )
        assert measured["input"] == kind and measured["precision"] == "bf16"
        assert ("dev" in measured) is (kind == "pretokenized")
    assert 0 <= measured["dev"]["f1"] <= 1


def test_the_onnx_runtime_loop_tags_every_word_and_keeps_its_best_batch(tmp_path, dev_files):
    pytest.importorskip("onnxruntime", reason="the loop runs ONNX Runtime (requirements-onnx.txt)")
    import ort_loop

    model = tiny_token_classifier(tmp_path)
    graph = ort_loop.export_int8(str(model), tmp_path)
    tagger = ort_loop.OrtTagger(str(model), graph, threads=1)
    words, _ = hf_baseline.read_sentences(dev_files / "dev.conll")
    tagged = ort_loop.tag_all(tagger, words, 4, pretokenized=True)
    # one first-subword tag per gold word, and entities decoded from them
    assert [len(tags) for tags in tagged["tags"]] == [len(w) for w in words]
    assert all(label in tagger.labels.values() for tags in tagged["tags"] for label in tags)
    assert len(tagged["entities"]) == len(words)
    measured = run_measure(
        "measure-ort",
        "--model-dir",
        str(model),
        "--sentences",
        str(dev_files / "dev.conll"),
        "--documents",
        str(dev_files / "dev.spacy"),
        output=tmp_path / "ort.json",
    )
    assert set(measured["words_per_second_by_batch"]) == {"raw_text", "pretokenized", "documents"}
    assert all(set(by_size) == {"1", "8", "32", "128"} for by_size in measured["words_per_second_by_batch"].values())
    assert 0 <= measured["dev"]["f1"] <= 1 and measured["documents_truncated"] == 0
    summary = inference.ort_summary([measured, measured])
    for kind, by_size in measured["words_per_second_by_batch"].items():
        assert summary["words_per_second"][kind] == max(by_size.values())
        assert by_size[summary["batch_size"][kind]] == max(by_size.values())

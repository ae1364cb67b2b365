"""The encoder_graphs benchmark mode (benchmarks/modes/encoder_graphs.py) on
a tiny BERT: every graph built from the one encoder and run on the same
windows, the calibrated scales those windows' largest magnitudes, and the
report's ratios those of the results."""

import json

import numpy
import pytest
import spacy
from corpora import N_SENTS
from fixtures import ENGLISH_TRAIN
from modes import encoder_graphs
from processes import RESULTS_DIR
from tiny_models import build_tiny_bert, fixture_texts
from transformers import AutoTokenizer

from conll_ner.data.conll import read_conll_file
from conll_ner.data.docbin import conll_to_docbin

pytest.importorskip("onnxruntime", reason="the int8 graphs need onnxruntime and onnx (requirements-onnx.txt)")

SETTINGS = {"lang": "en", "dev_windows": 3, "calibration_windows": 2, "rounds": 1, "threads": 1}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    root = tmp_path_factory.mktemp("graphs")
    for split in ("train", "testa"):
        (root / "data" / "conll2003").mkdir(parents=True, exist_ok=True)
        (root / "data" / "conll2003" / f"eng.{split}").write_text(ENGLISH_TRAIN)
    encoder = build_tiny_bert(root / "bert", fixture_texts())
    results = encoder_graphs.run(root / "data", root / "work", {**SETTINGS, "encoder": str(encoder)})
    return root, encoder, results


def test_every_graph_runs_the_same_windows_and_fp32_is_the_reference(measured):
    _, _, results = measured
    assert set(results["graphs"]) == set(encoder_graphs.GRAPH_NAMES)
    root, _, _ = measured
    sentences = read_conll_file(root / "data" / "conll2003" / "eng.testa").sentences
    doc_bin, _ = conll_to_docbin(sentences, spacy.blank("en").vocab, n_sents=N_SENTS)
    assert results["inputs"]["windows"] == len(doc_bin) > 1  # one window per Doc of the convert step
    for name, graph in results["graphs"].items():
        assert graph["tokens_per_second"] > 0 and len(graph["pass_seconds"]) == SETTINGS["rounds"]
        assert 0.9 < graph["cosine_to_fp32"]["mean"] <= 1.0 + 1e-6, name
    assert results["graphs"]["fp32"]["cosine_to_fp32"]["min"] == pytest.approx(1.0, abs=1e-5)
    assert results["ours_per_loop"] == pytest.approx(
        results["graphs"]["ours"]["tokens_per_second"] / results["graphs"]["loop"]["tokens_per_second"]
    )
    shares = results["ours_operator_shares"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert "MatMulIntegerToFloat" in shares and "ReduceMax" in shares  # ours quantizes its rows


def test_calibrated_scales_are_the_largest_magnitude_each_input_reached(measured, tmp_path):
    import torch
    from transformers import AutoModel

    from conll_ner.packaging import row_int8
    from conll_ner.packaging.int8 import fused_fp32_graph

    root, encoder, _ = measured
    tokenizer = AutoTokenizer.from_pretrained(str(encoder))
    windows = encoder_graphs.document_windows(root / "data", "en", "train", 0, tokenizer)
    assert windows and all(ids.shape[0] == 1 for ids in windows)
    model = AutoModel.from_pretrained(str(encoder)).eval()
    fused = fused_fp32_graph(AutoModel.from_pretrained(str(encoder)), tmp_path)
    scales = encoder_graphs.calibrated_scales(fused, windows)
    assert list(scales) == row_int8.product_inputs(fused)
    # the first product's input is the embeddings' layer norm: torch computes it too
    with torch.no_grad():
        embedded = max(float(model.embeddings(torch.from_numpy(ids)).abs().max()) for ids in windows)
    first = scales[row_int8.product_inputs(fused)[0]]
    assert first == pytest.approx(embedded / row_int8.ACTIVATION_LEVEL, rel=1e-4)
    assert all(scale > 0 for scale in scales.values())
    # the attention-only graph fixes the scales of the attention nodes' outputs, which products read
    attention = encoder_graphs.attention_outputs(fused)
    assert attention and set(attention) <= set(scales)


def test_the_report_shows_each_graph_against_the_loops(measured):
    _, _, results = measured
    stored = {
        **results,
        "mode": "encoder_graphs",
        "command": "run_benchmark.py run --mode encoder_graphs",
        "date": "2026-12-07T10:00:00+00:00",
        "machine": {
            "cpu": "test CPU",
            "cores": 2,
            "platform": "test",
            "native_bfloat16": False,
            "int8_dot_products": False,
            "x86_flags": ["avx2"],
        },
        "settings": SETTINGS,
    }
    report = encoder_graphs.report_markdown(stored)
    assert "AVX2-only CPU" in report
    loop = results["graphs"]["loop"]["tokens_per_second"]
    for name, graph in results["graphs"].items():
        assert f"| {encoder_graphs.GRAPH_NAMES[name]} | {graph['tokens_per_second']:,.0f} | " in report
        assert f"| {graph['tokens_per_second'] / loop:.2f} |" in report


def test_the_committed_runs_report_ours_against_the_loops_graph():
    stored = json.loads((RESULTS_DIR / "results.json").read_text())
    runs = [stored[key] for key in ("encoder_graphs", "encoder_graphs_avx2") if key in stored]
    assert runs, "no encoder_graphs run is recorded"
    for run in runs:
        graphs = run["graphs"]
        assert run["ours_per_loop"] == pytest.approx(
            graphs["ours"]["tokens_per_second"] / graphs["loop"]["tokens_per_second"]
        )
        assert numpy.isclose(graphs["fp32"]["cosine_to_fp32"]["mean"], 1.0, atol=1e-5)


def test_without_the_onnx_tools_the_mode_stops_and_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(encoder_graphs, "int8_tools_missing", lambda: "onnx is not installed (pip install X)")
    with pytest.raises(SystemExit):
        encoder_graphs.run(tmp_path, tmp_path / "work", SETTINGS)
    said = " ".join(capsys.readouterr().out.split())  # wasabi wraps long lines
    assert "builds int8 graphs: onnx is not installed (pip install X)" in said
    assert not (tmp_path / "work").exists()  # nothing built

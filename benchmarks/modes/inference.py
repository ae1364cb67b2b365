"""The `inference` mode: CPU inference of the transformer pipeline against
the Hugging Face token-classification pipeline in the same precision, and
against a hand-written ONNX Runtime loop, on the long mode's pipelines.

Every variant runs in a process of its own (cpu_inference's measuring
commands), so that its peak memory is its own, and times the median of
three passes (median_seconds); with several rounds the variants take turns,
round after round, and the report gives each one's median over the rounds,
so that a disturbed stretch of the run slows one round of every variant
rather than all rounds of one.
"""

import importlib.util
import json
import statistics
from pathlib import Path
from typing import Any, Dict, List, Tuple

from common import cpu_kind_title, mode_header, ratios_and_targets, remarks
from corpora import first_sentences, write_docbin
from cpu_inference import (
    CONSISTENCY_BATCH_SIZES,
    HF_PRECISIONS,
    ORT_BATCH_SIZES,
    OUR_INPUTS,
    SENTENCE_INPUTS,
    build_int8_copy,
    default_variant,
    our_variants,
    run_in_process,
    span_window,
    write_sentences_conll,
)
from processes import PROJECT_DIR, WORK_DIR
from spacy.util import load_config
from wasabi import msg

from conll_ner.pipeline.cpu_features import cpu_computes_bfloat16, int8_dot_products

RESULTS_FILE = "results.json"
RESULTS_KEY = "inference"
# int8 and bfloat16 run on other kernels on an AVX2-only CPU: its runs have a key of their own
BY_CPU_KIND = True


# why the bfloat16 variants are left out on a CPU without native bfloat16
NO_BFLOAT16 = (
    "not run: this CPU has no native bfloat16 (AVX512-BF16 or AMX), where torch emulates it at a fraction of "
    "fp32's speed and the pipelines never predict in it"
)


def variants_for_this_cpu(
    variants: Dict[str, Dict[str, Any]], native_bfloat16: bool
) -> Tuple[Dict[str, Dict[str, Any]], Tuple[str, ...], Dict[str, str]]:
    """Our variants and the Hugging Face precisions to run on this CPU, and
    what was left out, with why: the bfloat16 ones where it is not native."""
    if native_bfloat16:
        return variants, HF_PRECISIONS, {}
    skipped = {name: NO_BFLOAT16 for name in variants if name.startswith("bf16")}
    skipped["Hugging Face pipeline, bf16"] = NO_BFLOAT16
    kept = {name: overrides for name, overrides in variants.items() if name not in skipped}
    return kept, tuple(precision for precision in HF_PRECISIONS if precision != "bf16"), skipped


# the Hugging Face pipeline's batched variant: a batch its padding to the
# longest text allows (ours, 1024 Docs sorted by length, would handicap it)
HF_BATCH_SIZE = 128


def hf_variants(precisions: Tuple[str, ...]) -> List[Dict[str, Any]]:
    """The pipeline in fp32 (as model cards ship it) and under bfloat16
    autocast (what an informed user turns on), at its default batch (one
    text per forward pass) and at HF_BATCH_SIZE, on both inputs."""
    return [
        {"precision": precision, "batch_size": size, "input": kind}
        for kind in SENTENCE_INPUTS
        for precision in precisions
        for size in (0, HF_BATCH_SIZE)
    ]


def hf_name(variant: Dict[str, Any]) -> str:
    batch = f"batch {variant['batch_size']}" if variant["batch_size"] else "default batch (1)"
    return f"{variant['precision']}, {batch}"


def write_dev_files(data_dir: Path, work: Path, limit: int) -> Tuple[Dict[str, Path], Dict[str, int]]:
    """The first `limit` dev sentences (0: all) as a CoNLL file and as the
    DocBin of 10-sentence documents that `spacy project run convert` writes."""
    sentences = first_sentences(data_dir / "conll2003" / "eng.testa", limit)
    paths = {"sentences": work / "dev.conll", "documents": work / "dev.spacy"}
    stats = write_docbin(sentences, "en", paths["documents"], "eng.testa")
    counts = {
        "sentences": len(sentences),
        "words": sum(len(s.words) for s in sentences),
        "documents": stats.docs_written,
    }
    write_sentences_conll(sentences, paths["sentences"])
    return paths, counts


def ort_summary(rounds: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The loop's words/s per input at its best batch size (the median over
    the rounds of each batch size's speed)."""
    speeds = {
        kind: {size: statistics.median(r["words_per_second_by_batch"][kind][size] for r in rounds) for size in sizes}
        for kind, sizes in rounds[0]["words_per_second_by_batch"].items()
    }
    best = {kind: max(by_size, key=by_size.get) for kind, by_size in speeds.items()}
    return {
        "rounds": rounds,
        "batch_size": best,
        "words_per_second": {kind: speeds[kind][size] for kind, size in best.items()},
        "dev": rounds[0]["dev"],
        "documents_truncated": rounds[0]["documents_truncated"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds),
    }


def run(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    if importlib.util.find_spec("onnxruntime") is None:
        msg.fail("The int8 variants need onnxruntime: pip install -r requirements-onnx.txt", exits=1)
    msg.info(f"int8 dot products on this CPU: {int8_dot_products()}")
    models = {name: WORK_DIR / path for name, path in settings["pipelines"].items()}
    if not (models["spacy"] / "meta.json").is_file() or not (models["hf"] / "config.json").is_file():
        msg.fail(
            f"{models['spacy']} or {models['hf']} is missing: the inference mode times the pipelines "
            "that the long mode trained (spacy project run benchmark benchmarks --vars.mode long)",
            exits=1,
        )
    paths, dev_set = write_dev_files(data_dir, work, settings["dev_sentences"])
    batch_size = load_config(models["spacy"] / "config.cfg")["nlp"]["batch_size"]
    variants, precisions, skipped = variants_for_this_cpu(
        our_variants(span_window(models["spacy"] / "config.cfg")), cpu_computes_bfloat16()
    )

    def measure(*args: str) -> Dict[str, Any]:
        return run_in_process(list(args), work / "measured.json")

    int8_build = build_int8_copy(models["spacy"], work / "spacy-int8", work / "measured.json")
    models["spacy"] = work / "spacy-int8"
    first_prediction = measure("first-prediction", "--model", str(models["spacy"]), "--variant", "int8")
    threads = ["--threads", str(settings["threads"])]
    sentences = ["--sentences", str(paths["sentences"])]
    dev_set_args = [*sentences, "--documents", str(paths["documents"]), *threads]
    ours: Dict[str, List[Dict[str, Any]]] = {name: [] for name in variants}
    hf: Dict[str, List[Dict[str, Any]]] = {}
    ort: List[Dict[str, Any]] = []
    for round_number in range(settings["rounds"]):
        score = ["--score"] if round_number == 0 else []
        for name in variants:
            msg.info(f"Round {round_number + 1}: ours, {name}")
            ours[name].append(
                measure("measure-ours", "--model", str(models["spacy"]), "--variant", name, *dev_set_args, *score)
            )
        for variant in hf_variants(precisions):
            key = f"{variant['input']}: {hf_name(variant)}"
            msg.info(f"Round {round_number + 1}: Hugging Face, {key}")
            hf.setdefault(key, []).append(
                measure(
                    "measure-hf",
                    "--model-dir",
                    str(models["hf"]),
                    "--precision",
                    variant["precision"],
                    "--batch-size",
                    str(variant["batch_size"]),
                    "--input",
                    variant["input"],
                    *sentences,
                    *threads,
                    *score,
                )
            )
        msg.info(f"Round {round_number + 1}: the hand-written ONNX Runtime loop")
        ort.append(measure("measure-ort", "--model-dir", str(models["hf"]), *dev_set_args))
    default = default_variant(variants)
    msg.info(f"Where the time of ours ({default}) goes: cProfile")
    profile = measure("profile-ours", "--model", str(models["spacy"]), "--variant", default, *dev_set_args)
    msg.info(f"Entities of ours ({default}) at batch sizes {CONSISTENCY_BATCH_SIZES}")
    consistency = measure(
        "batch-consistency", "--model", str(models["spacy"]), "--variant", default, *sentences, *threads
    )
    our_rows = [
        {
            "variant": name,
            "rounds": rounds,
            "dev": rounds[0]["dev"],
            "encoder_input": rounds[0]["encoder_input"],
            "first_batch_seconds": rounds[0]["first_batch_seconds"],
            "words_per_second": {
                kind: statistics.median(r["words_per_second"][kind] for r in rounds) for kind in OUR_INPUTS
            },
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds),
        }
        for name, rounds in ours.items()
    ]
    hf_rows = [
        {
            "variant": key,
            "input": rounds[0]["input"],
            "precision": rounds[0]["precision"],
            "batch_size": rounds[0]["batch_size"],
            "rounds": rounds,
            "dev": rounds[0].get("dev"),
            "words_per_second": statistics.median(r["words_per_second"] for r in rounds),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds),
        }
        for key, rounds in hf.items()
    ]
    by_name = {row["variant"]: row for row in our_rows}
    fp32_f1 = by_name["fp32"]["dev"]["f1"]
    ratios, targets = {}, {}
    for kind in SENTENCE_INPUTS:
        fastest = max((row for row in hf_rows if row["input"] == kind), key=lambda row: row["words_per_second"])
        value = by_name[default]["words_per_second"][kind] / fastest["words_per_second"]
        ratios[f"words/s {kind}, ours ({default}) / fastest Hugging Face ({hf_name(fastest)})"] = value
        targets[f"ours >= 1.5x the fastest Hugging Face variant ({kind})"] = value >= 1.5
    for row in our_rows:
        ratios[f"dev F1 {row['variant']} - fp32 (points)"] = (row["dev"]["f1"] - fp32_f1) * 100
    targets["default's dev F1 within 0.3 of fp32"] = by_name[default]["dev"]["f1"] >= fp32_f1 - 0.003
    targets["0 dev sentences whose entities change with the batch (default)"] = not any(
        consistency["differing"].values()
    )
    ort_row = ort_summary(ort)
    for kind in ("raw_text", "documents"):
        value = by_name[default]["words_per_second"][kind] / ort_row["words_per_second"][kind]
        ratios[f"words/s {kind}, ours ({default}) / the ONNX Runtime loop (batch {ort_row['batch_size'][kind]})"] = (
            value
        )
        targets[f"ours >= 1.2x the ONNX Runtime loop ({kind})"] = value >= 1.2
    return {
        "pipelines": {name: str(path) for name, path in models.items()},
        "dev_set": dev_set,
        "batch_size": batch_size,
        "default": default,
        "transformer_model": dict(
            load_config(PROJECT_DIR / "configs" / "transformer.cfg", interpolate=False)["components"]["transformer"][
                "model"
            ]
        ),
        "int8_build": int8_build,
        "first_prediction": first_prediction,
        "ours": our_rows,
        "hugging_face": hf_rows,
        "onnx_runtime_loop": ort_row,
        "profile": profile,
        "batch_consistency": consistency,
        "skipped": skipped,
        "ratios": ratios,
        "targets": targets,
    }


def inference_default_note(results: Dict[str, Any]) -> str:
    """The default variant and where its int8 encoder came from: runs
    recorded before conll_ner.TransformerModel.v1 built it on the first
    prediction, through the config's CPU callback."""
    if "int8_graph" in results:
        callback = ", ".join(f"{key} = {json.dumps(value)}" for key, value in results["default_callback"].items())
        return (
            f"Default (configs/transformer.cfg at the time): **{results['default']}** (`{callback}`). This run "
            "predates conll_ner.TransformerModel.v1: the int8 graph was built on the first prediction of a pipeline "
            f"on a machine and cached ({results['int8_graph']['seconds']:.1f} s, peak RSS "
            f"{results['int8_graph']['peak_rss_mb']:,.0f} MB), and int8 ran in length groups, not one window per call."
        )
    settings = ", ".join(
        f"{key} = {json.dumps(value)}" for key, value in results["transformer_model"].items() if key.startswith("cpu_")
    )
    build, first = results["int8_build"], results["first_prediction"]
    return (
        f"Default (configs/transformer.cfg): **{results['default']}** (`{settings}`), on the pipeline with its int8 "
        f"encoder, built as the package step builds it: {build['seconds']:.1f} s, peak RSS of the exporting process "
        f"{build['export_peak_rss_mb']:,.0f} MB. Loading it took {first['load_seconds']:.1f} s and its first "
        f"prediction {first['seconds']:.2f} s (nothing exported), peak RSS {first['peak_rss_mb']:,.0f} MB."
    )


def int8_runtime_note(results: Dict[str, Any]) -> str:
    """What the int8 variants ran in on this run's CPU: in int8 everywhere
    since per-row scales; runs before them predicted with torch on CPUs
    without VNNI or AMX."""
    runtime = next((row["rounds"][0].get("runtime") for row in results["ours"] if row["variant"] == "int8"), None)
    if runtime:
        return f" The int8 variants predicted in {runtime['precision']}."
    if not results["machine"].get("int8_dot_products", True):
        return " This CPU has no VNNI or AMX, so the int8 variants predicted with torch, as pipelines did on such CPUs."
    return ""


def report_markdown(results: Dict[str, Any]) -> str:
    ours, hf, dev, rounds = results["ours"], results["hugging_face"], results["dev_set"], results["settings"]["rounds"]
    lines = [
        *mode_header(
            "## CPU inference against the Hugging Face pipeline "
            f"(`{results['mode']}` mode{cpu_kind_title(results['machine'])})",
            results,
        ),
        f"The CoNLL-2003 English dev set ({dev['words']:,} words, {dev['sentences']:,} sentences, {dev['documents']:,} "
        "documents of 10 sentences) through the long mode's "
        "all-MiniLM-L6-v2 pipelines: ours (spaCy, `spacy.load` with one change to configs/transformer.cfg's CPU "
        "callback per variant) and the Hugging Face model that the Trainer fine-tuned. Words/s: the median of three "
        "passes (the project's one timer, median_seconds) after a warm-up batch, each variant in a process of its "
        f"own, in {rounds} round(s) where every variant takes its turn; over several rounds, their median. "
        "Peak RSS: the process's own peak (VmHWM) over the rounds, model and every input included. Raw text and "
        "pre-tokenized: one dev sentence per text or Doc; documents: the dev set's 10-sentence Docs (ours only), "
        f"where windows overlap. Our batch is the pipeline's own ({results['batch_size']} Docs)."
        + int8_runtime_note(results),
        "",
        inference_default_note(results),
        "",
        "| Ours | Raw text words/s | Pre-tokenized words/s | Documents words/s | Dev F1 | Peak RSS MB | First batch s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in ours:
        speed = " | ".join(f"{row['words_per_second'][kind]:,.0f}" for kind in OUR_INPUTS)
        name = f"**{row['variant']}** (default)" if row["variant"] == results["default"] else row["variant"]
        lines.append(
            f"| {name} | {speed} | {row['dev']['f1'] * 100:.2f} | {row['peak_rss_mb']:,.0f} | "
            f"{row['first_batch_seconds']:.1f} |"
        )
    lines += [
        "",
        "| Hugging Face pipeline | Input | Words/s | Dev F1 (first subword) | Peak RSS MB |",
        "|---|---|---:|---:|---:|",
    ]
    for row in hf:
        f1 = f"{row['dev']['f1'] * 100:.2f}" if row.get("dev") else ""
        lines.append(
            f"| {row['variant'].split(': ', 1)[1]} | {row['input']} | {row['words_per_second']:,.0f} | {f1} | "
            f"{row['peak_rss_mb']:,.0f} |"
        )
    if results.get("skipped"):
        lines += ["", "Left out:", ""] + [f"- {name}: {why}" for name, why in results["skipped"].items()]
    if "onnx_runtime_loop" in results:  # runs from before it was measured lack it
        ort = results["onnx_runtime_loop"]
        lines += [
            "",
            "The hand-written ONNX Runtime loop on the same fine-tuned model (benchmarks/ort_loop.py: "
            "`torch.onnx.export`, `quantize_dynamic` int8 per channel, fast tokenizer + session + argmax, "
            "first-subword labels decoded into entities), at its best batch size of "
            f"{', '.join(str(size) for size in ORT_BATCH_SIZES)} per input:",
            "",
            "| Input | Best batch | Words/s |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {kind} | {ort['batch_size'][kind]} | {speed:,.0f} |" for kind, speed in ort["words_per_second"].items()
        ]
        lines += [
            "",
            f"Its dev F1 (gold-tokenized sentences): {ort['dev']['f1'] * 100:.2f}; documents cut at the model's "
            f"maximum length: {ort['documents_truncated']}; peak RSS {ort['peak_rss_mb']:,.0f} MB.",
        ]
    if "batch_consistency" in results:  # runs from before it was measured lack it
        consistency = results["batch_consistency"]
        counts = consistency.get("differing", {})
        shares = ", ".join(
            f"{share:.2%}" + (f" ({counts[size]})" if size in counts else "") + f" at batch {size}"
            for size, share in consistency["share_differing"].items()
        )
        lines += [
            "",
            f"Dev sentences whose entities differ from their entities at batch size 1, ours ({consistency['variant']}, "
            f"predicting on the {consistency['runtime']['device'].upper()} in {consistency['runtime']['precision']}): "
            f"{shares} ({consistency['sentences']:,} sentences).",
        ]
    if "profile" in results:  # runs from before it was measured lack it
        profile = results["profile"]
        kinds = [kind for kind in ("raw_text", "documents") if kind in profile]
        lines += [
            "",
            f"Where the time of ours ({profile['variant']}) goes: one pass under cProfile (which slows Python code "
            "more than compiled code), cumulative seconds as a share of the pass; subword tokenization, encoder "
            "calls and the rest of the transformer's work (windows, the compiled alignment of pieces to tokens, "
            "outputs) are parts of the transformer component; the rest is the NER component (listener and "
            "decoder) and spaCy's loop.",
            "",
            "| Part | " + " | ".join(kinds) + " |",
            "|---|" + "---:|" * len(kinds),
        ]
        parts = [part for part in profile[kinds[0]] if part != "total"]
        for part in parts:
            lines.append(
                f"| {part} | " + " | ".join(f"{profile[k][part] / profile[k]['total']:.0%}" for k in kinds) + " |"
            )
        rest = {
            k: 1
            - (profile[k]["spaCy tokenizer (text to Doc)"] + profile[k]["transformer component"]) / profile[k]["total"]
            for k in kinds
        }
        lines.append("| the rest (NER, spaCy's loop) | " + " | ".join(f"{rest[k]:.0%}" for k in kinds) + " |")
    lines += [
        "",
        "What the encoder is given (dev set, our batch): subword tokens per word of the text; encoder tokens "
        "per word (windows with their special tokens and overlap); padding share of the encoder's input with "
        "one call per batch and as run (length groups where the variant has them).",
        "",
        "| Ours | Input | Subwords/word | Encoder tokens/word | Padding, one call per batch | Padding as run |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in ours:
        for kind, stats in row["encoder_input"].items():
            lines.append(
                f"| {row['variant']} | {kind} | {stats['subwords_per_word']:.3f} | "
                f"{stats['encoder_tokens_per_word']:.3f} | {stats['padding_share_one_call']:.1%} | "
                f"{stats['padding_share']:.1%} |"
            )
    return "\n".join(lines + remarks(results) + ratios_and_targets(results)) + "\n"

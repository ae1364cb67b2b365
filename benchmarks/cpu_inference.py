"""CPU inference measurements, one per process (the measuring commands of
the `inference` and `full` modes): our pipeline in a CPU variant, the
Hugging Face token-classification pipeline, the hand-written ONNX Runtime
loop, where the time goes, entities by batch size, the first prediction and
the int8 build. Each command writes its figures to --output-json, so that
its peak memory is its own and no measurement warms the caches of another.
"""

import resource
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import hf_baseline
import ort_loop
import spacy
import typer
from processes import measure_in_subprocess
from seqeval.metrics import f1_score
from spacy.tokens import Doc, DocBin
from spacy.util import load_config, minibatch
from wasabi import msg

from conll_ner.data.conll import Sentence, read_conll_file
from conll_ner.evaluation.metrics import evaluate_docbin, median_seconds
from conll_ner.files import write_atomically
from conll_ner.packaging.int8 import write_int8_pipeline
from conll_ner.pipeline.length_groups import equal_length_groups, length_groups
from conll_ner.pipeline.prediction_runtime import prediction_runtime, transformer_shims

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])

# our inputs: the two the Hugging Face pipeline also takes, and the dev set's
# documents of 10 sentences, where windows overlap
SENTENCE_INPUTS = ("raw_text", "pretokenized")
OUR_INPUTS = (*SENTENCE_INPUTS, "documents")
HF_PRECISIONS = ("fp32", "bf16")


def span_window(config: Path) -> int:
    """The window of a transformer config's strided span getter (a trained
    pipeline's config.cfg, or one of configs/)."""
    return int(load_config(config)["components"]["transformer"]["model"]["get_spans"]["window"])


def model_overrides(**settings: Any) -> Dict[str, Any]:
    return {"components": {"transformer": {"model": settings}}} if settings else {}


# torch in fp32: the CPU runtime's int8 and bfloat16 off
FP32_CONFIG = model_overrides(cpu_int8=False, cpu_bfloat16=False)


def our_variants(window: int) -> Dict[str, Dict[str, Any]]:
    """Config overrides of each variant of ours, in the order of the report.
    `int8` is configs/transformer.cfg as written, on the pipeline with its
    int8 encoder (as the package step builds it); the others change one
    setting of [components.transformer.model]."""
    return {
        "fp32": FP32_CONFIG,
        "bf16, one call per batch": model_overrides(cpu_int8=False, cpu_token_budget=0),
        "bf16": model_overrides(cpu_int8=False),
        "int8": {},
        f"int8, windows without overlap (stride {window})": model_overrides(get_spans={"stride": window}),
    }


def load_variant(model: Path, variant: str) -> spacy.Language:
    """The trained pipeline loaded as one of our_variants (empty: as it is),
    the variants sized by its own span window."""
    overrides = our_variants(span_window(Path(model) / "config.cfg"))[variant] if variant else {}
    return spacy.load(model, config=overrides)


def default_variant(variants: Dict[str, Dict[str, Any]]) -> str:
    """The variant that loads the pipeline as it is."""
    return next(name for name, overrides in variants.items() if not overrides)


def encoder_input(nlp: spacy.Language, docs: List[Doc], batch_size: int) -> Dict[str, float]:
    """What the encoder is given per word, from the pipeline's own span
    getter and tokenizer: subword tokens of the text, tokens of its windows
    (special tokens and overlap included), and the share of padding in the
    encoder's input with one call per batch and with the shim's length groups.
    Tells token savings apart from faster arithmetic."""
    model = nlp.get_pipe("transformer").model
    tokenizer, get_spans = model.tokenizer, model.attrs["get_spans"]
    (shim,) = transformer_shims(nlp)
    words = subwords = tokens = one_call = grouped = 0
    for batch in minibatch(docs, batch_size):
        words += sum(len(doc) for doc in batch)
        subwords += sum(
            len(ids) for ids in tokenizer([doc.text for doc in batch], add_special_tokens=False)["input_ids"]
        )
        spans = [span for doc_spans in get_spans(batch) for span in doc_spans]
        lengths = [len(ids) for ids in tokenizer([span.text for span in spans])["input_ids"]]
        tokens += sum(lengths)
        one_call += len(lengths) * max(lengths)
        if shim.precision() == "int8":  # windows of one length together, on their real tokens
            groups = equal_length_groups(lengths, shim.token_budget)
        else:
            groups = length_groups(lengths, shim.token_budget) if shim.token_budget else [list(range(len(lengths)))]
        grouped += sum(len(group) * max(lengths[row] for row in group) for group in groups)
    return {
        "subwords_per_word": subwords / words,
        "encoder_tokens_per_word": tokens / words,
        "padding_share_one_call": 1 - tokens / one_call,
        "padding_share": 1 - tokens / grouped,
    }


def run_pipe(nlp: spacy.Language, items: List[Any], batch_size: Optional[int] = None) -> None:
    for _ in nlp.pipe(items, batch_size=batch_size):
        pass


@app.command("measure-ours")
def measure_ours_command(
    model: str = typer.Option(..., "--model"),
    variant: str = typer.Option(
        "", "--variant", help="A variant of our transformer pipeline (our_variants); empty: the pipeline as it is"
    ),
    sentences: Path = typer.Option(
        ..., "--sentences", exists=True, dir_okay=False, help="CoNLL file of the dev sentences"
    ),
    documents: Optional[Path] = typer.Option(
        None, "--documents", exists=True, dir_okay=False, help="DocBin of the dev documents; none: sentences only"
    ),
    inputs: List[str] = typer.Option(
        [], "--input", help="raw_text, pretokenized or documents (repeatable); none: every input given"
    ),
    batch_size: int = typer.Option(0, "--batch-size", help="Docs per nlp.pipe batch; 0: the pipeline's own"),
    score: bool = typer.Option(
        False, "--score", help="Also score the dev documents (seqeval F1) and count the encoder's input"
    ),
    threads: int = typer.Option(0, "--threads"),
    output_json: Path = typer.Option(..., "--output-json"),
) -> None:
    """A spaCy pipeline (a variant of ours, or any pipeline as it is) over
    each input: words/s the median of three passes after a warm-up batch,
    and the process's peak memory. The one measuring path of the spaCy side,
    for the full mode's pipelines and the inference mode's variants."""
    torch_threads = hf_baseline.set_threads(threads)
    started = time.perf_counter()
    nlp = load_variant(model, variant)
    load_seconds = time.perf_counter() - started
    words = [s.words for s in read_conll_file(sentences).sentences]
    doc_words = (
        [[token.text for token in doc] for doc in DocBin().from_disk(documents).get_docs(nlp.vocab)]
        if documents
        else []
    )
    make_inputs = {
        "raw_text": lambda: [" ".join(w) for w in words],
        "pretokenized": lambda: [Doc(nlp.vocab, words=w) for w in words],
        "documents": lambda: [Doc(nlp.vocab, words=w) for w in doc_words],
    }
    n_words = {
        "raw_text": sum(map(len, words)),
        "pretokenized": sum(map(len, words)),
        "documents": sum(map(len, doc_words)),
    }
    kinds = inputs or [kind for kind in OUR_INPUTS if kind != "documents" or documents]
    if set(kinds) - set(OUR_INPUTS) or ("documents" in kinds and not documents) or (score and not documents):
        raise typer.BadParameter(f"inputs {kinds}: choose from {OUR_INPUTS}; documents and --score need --documents")
    batch_size = batch_size or nlp.batch_size
    started = time.perf_counter()
    run_pipe(nlp, make_inputs["pretokenized"]()[:batch_size], batch_size)  # int8: opens the session
    first_batch_seconds = time.perf_counter() - started
    result: Dict[str, Any] = {
        "variant": variant,
        "batch_size": batch_size,
        "load_seconds": load_seconds,
        "first_batch_seconds": first_batch_seconds,
        "torch_threads": torch_threads,
        "runtime": prediction_runtime(nlp),
        "n_words": {kind: n_words[kind] for kind in kinds},
        "words_per_second": {},
        "encoder_input": {},
    }
    for kind in kinds:
        items = make_inputs[kind]()
        result["words_per_second"][kind] = n_words[kind] / median_seconds(partial(run_pipe, nlp, items, batch_size))
    if score:
        metrics, _ = evaluate_docbin(nlp, documents)
        result["dev"] = {"precision": metrics["ents_p"], "recall": metrics["ents_r"], "f1": metrics["ents_f"]}
        if "transformer" in nlp.pipe_names:
            for name in ("pretokenized", "documents"):
                result["encoder_input"][name] = encoder_input(nlp, make_inputs[name](), batch_size)
    result["peak_rss_mb"] = hf_baseline.peak_rss_mb()
    hf_baseline.write_json(output_json, result)


# where our time goes: cProfile's cumulative seconds of these functions
# (module, function; compiled ones appear as built-in methods); nested parts
# are shares of their parent
PROFILE_PARTS = {
    "spaCy tokenizer (text to Doc)": [("spacy.language", "make_doc")],
    "transformer component": [("spacy_transformers.pipeline_component", "predict")],
    "subword tokenization": [("spacy_transformers.layers.transformer_model", "huggingface_tokenize")],
    "encoder calls": [("conll_ner.pipeline.cpu_shim", "predict")],
}
# inside the transformer component, the time of neither part above: windows,
# the alignment of pieces to tokens (compiled, invisible to cProfile) and the
# conversion of the outputs
TRANSFORMER_REST = "windows, alignment, outputs"


def profile_parts(stats: Any) -> Dict[str, float]:
    """Cumulative seconds of each of PROFILE_PARTS in a pstats.Stats."""

    def found(filename: str, function: str, module: str, name: str) -> bool:
        if function == f"<built-in method {module}.{name}>":
            return True
        return function == name and filename.replace("/", ".").endswith(f"{module}.py")

    parts = dict.fromkeys(PROFILE_PARTS, 0.0)
    for (filename, _, function), (_, _, _, cumulative, _) in stats.stats.items():
        for part, functions in PROFILE_PARTS.items():
            if any(found(filename, function, module, name) for module, name in functions):
                parts[part] += cumulative
    return parts


@app.command("profile-ours")
def profile_ours_command(
    model: str = typer.Option(..., "--model"),
    variant: str = typer.Option(..., "--variant"),
    sentences: Path = typer.Option(..., "--sentences", exists=True, dir_okay=False),
    documents: Path = typer.Option(..., "--documents", exists=True, dir_okay=False),
    threads: int = typer.Option(0, "--threads"),
    output_json: Path = typer.Option(..., "--output-json"),
) -> None:
    """Where a variant's time goes on raw sentences and on documents (as
    text): one pass under cProfile, after a warm-up batch. The rest of the
    total is the NER component (listener and transition decoder, compiled
    code cProfile cannot see into) and spaCy's own loop."""
    import cProfile
    import pstats

    hf_baseline.set_threads(threads)
    nlp = load_variant(model, variant)
    words = [s.words for s in read_conll_file(sentences).sentences]
    doc_words = [[token.text for token in doc] for doc in DocBin().from_disk(documents).get_docs(nlp.vocab)]
    texts = {"raw_text": [" ".join(w) for w in words], "documents": [" ".join(w) for w in doc_words]}
    run_pipe(nlp, texts["raw_text"][: nlp.batch_size])
    result: Dict[str, Any] = {"variant": variant}
    for kind, items in texts.items():
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(run_pipe, nlp, items)
        parts = profile_parts(pstats.Stats(profiler))
        parts[TRANSFORMER_REST] = (
            parts["transformer component"] - parts["subword tokenization"] - parts["encoder calls"]
        )
        result[kind] = {"total": time.perf_counter() - started, **parts}
    hf_baseline.write_json(output_json, result)


CONSISTENCY_BATCH_SIZES = (1, 8, 32, 128)


@app.command("batch-consistency")
def batch_consistency_command(
    model: str = typer.Option(..., "--model"),
    variant: str = typer.Option(..., "--variant"),
    sentences: Path = typer.Option(..., "--sentences", exists=True, dir_okay=False),
    threads: int = typer.Option(0, "--threads"),
    output_json: Path = typer.Option(..., "--output-json"),
) -> None:
    """The number and share of dev sentences (raw text) whose entities at
    each of CONSISTENCY_BATCH_SIZES differ from their entities at batch size
    1, and the precision the variant predicted in here."""
    hf_baseline.set_threads(threads)
    nlp = load_variant(model, variant)
    texts = [" ".join(s.words) for s in read_conll_file(sentences).sentences]

    def entities(batch_size: int) -> List[List[Tuple[int, int, str]]]:
        return [
            [(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=batch_size)
        ]

    alone = entities(CONSISTENCY_BATCH_SIZES[0])
    differing = {str(size): sum(a != b for a, b in zip(alone, entities(size))) for size in CONSISTENCY_BATCH_SIZES[1:]}
    hf_baseline.write_json(
        output_json,
        {
            "variant": variant,
            "runtime": prediction_runtime(nlp),
            "sentences": len(texts),
            "differing": differing,
            "share_differing": {size: count / len(texts) for size, count in differing.items()},
        },
    )


@app.command("first-prediction")
def first_prediction_command(
    model: str = typer.Option(..., "--model"),
    variant: str = typer.Option(..., "--variant"),
    output_json: Path = typer.Option(..., "--output-json"),
) -> None:
    """Seconds to load the pipeline and to make its first prediction, and
    the process's peak memory: nothing is exported on the way."""
    started = time.perf_counter()
    nlp = load_variant(model, variant)
    loaded = time.perf_counter()
    nlp("Peter Blackburn wrote from Brussels .")
    hf_baseline.write_json(
        output_json,
        {
            "variant": variant,
            "load_seconds": loaded - started,
            "seconds": time.perf_counter() - loaded,
            "peak_rss_mb": hf_baseline.peak_rss_mb(),
        },
    )


@app.command("build-int8")
def build_int8_command(
    model: Path = typer.Option(..., "--model"),
    output: Path = typer.Option(..., "--output"),
    output_json: Path = typer.Option(..., "--output-json"),
) -> None:
    """The package step's int8 build, timed: seconds, and the peak memory
    of the process that exported the encoder."""
    started = time.perf_counter()
    write_int8_pipeline(model, output)
    hf_baseline.write_json(
        output_json,
        {
            "seconds": time.perf_counter() - started,
            "export_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        },
    )


@app.command("measure-hf")
def measure_hf_command(
    model_dir: str = typer.Option(..., "--model-dir"),
    precision: str = typer.Option(..., "--precision", help="fp32 or bf16 (autocast)"),
    batch_size: int = typer.Option(0, "--batch-size", help="0: the pipeline's default"),
    input_kind: str = typer.Option(..., "--input", help="raw_text or pretokenized"),
    sentences: Path = typer.Option(..., "--sentences", exists=True, dir_okay=False),
    score: bool = typer.Option(False, "--score", help="Also score the pre-tokenized predictions (seqeval F1)"),
    threads: int = typer.Option(0, "--threads"),
    output_json: Path = typer.Option(..., "--output-json"),
) -> None:
    """The Hugging Face side over one input, the median of three passes. raw_text: the
    token-classification pipeline with entity aggregation, what a model
    card's user runs; pretokenized: the gold words through the tokenizer and
    the model, first-subword tags (hf_baseline.predict_tags)."""
    import torch
    import transformers

    torch_threads = hf_baseline.set_threads(threads)
    words, tags = hf_baseline.read_sentences(sentences)
    n_words = sum(map(len, words))
    bf16 = precision == "bf16"
    result: Dict[str, Any] = {
        "precision": precision,
        "batch_size": batch_size,
        "input": input_kind,
        "torch_threads": torch_threads,
    }
    if input_kind == "raw_text":
        pipe = transformers.pipeline("token-classification", model=model_dir, aggregation_strategy="simple", device=-1)
        texts = [" ".join(w) for w in words]
        batching = {"batch_size": batch_size} if batch_size else {}

        def run(items: List[str]) -> Any:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return pipe(items, **batching)

        run(texts[: max(batch_size, 8)])
        result["words_per_second"] = n_words / median_seconds(lambda: run(texts))
    else:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
        model = transformers.AutoModelForTokenClassification.from_pretrained(model_dir)
        size = batch_size or 1  # as the pipeline: one sentence per forward pass
        hf_baseline.predict_tags(model, tokenizer, words[: max(size, 8)], size, bf16=bf16)
        predicted: List[Any] = []

        def tag_all() -> None:
            # each pass replaces the last one's tags, which are then scored
            predicted[:] = hf_baseline.predict_tags(model, tokenizer, words, size, bf16=bf16)[0]

        result["words_per_second"] = n_words / median_seconds(tag_all)
        if score:
            result["dev"] = {"f1": f1_score(tags, predicted)}
    result["peak_rss_mb"] = hf_baseline.peak_rss_mb()
    hf_baseline.write_json(output_json, result)


# the batch sizes the ONNX Runtime loop is timed at; its best one is reported
ORT_BATCH_SIZES = (1, 8, 32, 128)


@app.command("measure-ort")
def measure_ort_command(
    model_dir: str = typer.Option(..., "--model-dir"),
    sentences: Path = typer.Option(..., "--sentences", exists=True, dir_okay=False),
    documents: Path = typer.Option(..., "--documents", exists=True, dir_okay=False),
    threads: int = typer.Option(0, "--threads"),
    output_json: Path = typer.Option(..., "--output-json"),
) -> None:
    """The hand-written ONNX Runtime loop (ort_loop.py) on the fine-tuned
    Hugging Face model: raw sentences, gold-tokenized sentences (scored) and
    the dev set's 10-sentence documents as text, at each of ORT_BATCH_SIZES,
    the median of three passes each; entities decoded, as ours are."""
    torch_threads = hf_baseline.set_threads(threads)
    words, gold = hf_baseline.read_sentences(sentences)
    doc_words = [
        [token.text for token in doc] for doc in DocBin().from_disk(documents).get_docs(spacy.blank("en").vocab)
    ]
    inputs = {
        "raw_text": ([" ".join(w) for w in words], False, sum(map(len, words))),
        "pretokenized": (words, True, sum(map(len, words))),
        "documents": ([" ".join(w) for w in doc_words], False, sum(map(len, doc_words))),
    }
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        graph = ort_loop.export_int8(model_dir, Path(tmp))
        export_seconds = time.perf_counter() - started
        tagger = ort_loop.OrtTagger(model_dir, graph, torch_threads)
        speeds: Dict[str, Dict[str, float]] = {}
        for kind, (items, pretokenized, n_words) in inputs.items():
            speeds[kind] = {}
            for size in ORT_BATCH_SIZES:
                ort_loop.tag_all(tagger, items[:size], size, pretokenized)  # warm-up
                seconds = median_seconds(partial(ort_loop.tag_all, tagger, items, size, pretokenized))
                speeds[kind][str(size)] = n_words / seconds
        predicted = ort_loop.tag_all(tagger, words, max(ORT_BATCH_SIZES), pretokenized=True)["tags"]
        limit = tagger.tokenizer.model_max_length
        truncated = sum(len(ids) > limit for ids in tagger.tokenizer(inputs["documents"][0])["input_ids"])
    hf_baseline.write_json(
        output_json,
        {
            "torch_threads": torch_threads,
            "export_seconds": export_seconds,
            "words_per_second_by_batch": speeds,
            "dev": {"f1": f1_score(gold, predicted)},
            "documents_truncated": truncated,
            "peak_rss_mb": hf_baseline.peak_rss_mb(),
        },
    )


def run_in_process(args: List[str], output_json: Path) -> Dict[str, Any]:
    """One of this module's measuring commands in a process of its own."""
    return measure_in_subprocess([str(Path(__file__).resolve()), *args], output_json)


def build_int8_copy(model: Path, output: Path, output_json: Path) -> Dict[str, Any]:
    """The package step's int8 build of a pipeline into a copy at `output`,
    in a process of its own (build-int8): its seconds and peak memory."""
    msg.info("Building the int8 encoder into a copy of the pipeline, as the package step does")
    return run_in_process(["build-int8", "--model", str(model), "--output", str(output)], output_json)


def write_sentences_conll(sentences: List[Sentence], path: Path) -> None:
    """Sentences as a two-column CoNLL file (word, tag as in the source): the
    same words for every inference run, whichever side reads them."""
    text = "\n\n".join("\n".join(f"{w} {t}" for w, t in zip(s.words, s.tags)) for s in sentences)
    write_atomically(path, (text + "\n").encode("utf8"))


if __name__ == "__main__":
    app()

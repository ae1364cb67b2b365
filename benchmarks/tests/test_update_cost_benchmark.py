"""The update_cost benchmark mode's own parts (benchmarks/modes/update_cost.py):
its corpus and trimmed encoder from the mode's first sentences, the
interleaved update timings and the profile's parts on a tiny XLM-R pipeline,
and the targets as verdicts of the stored figures."""

import json

import pytest
import spacy
from modes import update_cost
from processes import PROJECT_DIR, RESULTS_DIR
from spacy.tokens import DocBin
from spacy.training import Example
from tiny_models import build_tiny_transformer_pipeline, build_tiny_xlmr, fixture_texts
from trim_vocabulary import trim_vocabulary

from conll_ner.pipeline.prediction_runtime import transformer_shims


@pytest.fixture(scope="module")
def tiny_xlmr_pipeline(tmp_path_factory):
    return build_tiny_transformer_pipeline(tmp_path_factory.mktemp("tiny-xlmr"), encoder="xlmr")


def batches(nlp, count):
    """`count` batches of two fixture texts each, the texts in turn."""
    texts = fixture_texts()
    examples = []
    for i in range(2 * count):
        doc = nlp.make_doc(texts[i % len(texts)])
        examples.append(Example.from_dict(doc, {"entities": [(0, len(doc[0].text), "PER")]}))
    return [examples[i : i + 2] for i in range(0, 2 * count, 2)]


def test_the_corpus_and_the_trimmed_encoder_hold_the_modes_first_sentences(tmp_path):
    data = tmp_path / "data" / "conll2002"
    data.mkdir(parents=True)
    (data / "esp.train").write_text(
        "La B-LOC\nCoruña I-LOC\n. O\n\nCastaño B-PER\nsalió O\n. O\n\nEl O\nfin O\n. O\n\n", encoding="utf8"
    )
    (data / "esp.testa").write_text("Córdoba B-LOC\nganó O\n. O\n\nMadrid B-LOC\nperdió O\n. O\n\n", encoding="utf8")
    settings = {"lang": "es", "train_sentences": {"es": 2}, "dev_sentences": {"es": 1}}
    work = tmp_path / "work"
    data_info = update_cost.prepare_corpus(tmp_path / "data", work, settings)
    assert data_info["es"]["train"] == {"file": "esp.train", "sentences": 2, "words": 6}
    assert data_info["es"]["dev"] == {"file": "esp.testa", "sentences": 1, "words": 3}
    docs = list(DocBin().from_disk(work / "corpus" / "train" / "es.spacy").get_docs(spacy.blank("es").vocab))
    assert [ent.text for doc in docs for ent in doc.ents] == ["La Coruña", "Castaño"]
    full = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    trim = update_cost.trimmed_encoder(str(full), tmp_path / "data", settings, work)
    assert trim["texts_with_other_pieces"] == 0 and (work / "encoder-trimmed" / "config.json").is_file()
    # the pieces of the mode's three sentences, not of the unread training and dev sentences
    first = trim_vocabulary(full, ["La Coruña .", "Castaño salió .", "Córdoba ganó ."], tmp_path / "first")
    every = trim_vocabulary(
        full, ["La Coruña .", "Castaño salió .", "El fin .", "Córdoba ganó .", "Madrid perdió ."], tmp_path / "every"
    )
    assert trim["pieces_kept"] == first["pieces_kept"] < every["pieces_kept"]


def test_variants_are_timed_on_the_same_batches_and_the_profile_names_real_functions(tiny_xlmr_pipeline):
    from thinc.api import Adam

    pipelines = {
        "dense": spacy.load(
            tiny_xlmr_pipeline, config={"components.transformer.model.freeze_word_embeddings_above": 10**9}
        ),
        "frozen": spacy.load(
            tiny_xlmr_pipeline, config={"components.transformer.model.freeze_word_embeddings_above": 0}
        ),
    }
    for nlp in pipelines.values():
        nlp.get_pipe("ner").add_label("PER")
    work = batches(pipelines["dense"], 6)
    settings = {"warmup_updates": 1, "rounds": 2, "updates_per_round": 2}
    timed = update_cost.measure_updates({name: (nlp, Adam(1e-3)) for name, nlp in pipelines.items()}, work, settings)
    for row in timed.values():
        assert row["updates"] == 4 and row["seconds_per_update"] > 0 and row["optimizer_seconds"] > 0
        assert row["words_per_update"] == pytest.approx(sum(len(eg) for batch in work[1:5] for eg in batch) / 4)
    frozen = {name: not transformer_shims(nlp)[0].word_embeddings().requires_grad for name, nlp in pipelines.items()}
    assert frozen == {"dense": False, "frozen": True}

    profile = update_cost.profile_default(pipelines["frozen"], Adam(1e-3), work[5:6])
    parts = profile["parts_seconds_per_update"]
    # each part is found in the libraries' functions: renamed functions would leave it at 0
    assert all(parts[part] > 0 for part in ("encoder forward", "encoder backward", "optimizer"))
    assert parts["tokenize, windows, alignment"] > 0
    assert sum(parts.values()) == pytest.approx(profile["seconds_per_update"], rel=0.05)


def stored_results():
    return json.loads((RESULTS_DIR / "results.json").read_text())["update_cost"]


def test_targets_are_the_verdicts_of_the_stored_figures_and_flip_at_their_thresholds():
    found = stored_results()
    assert update_cost.targets(found) == found["targets"]
    updates = found["updates"]
    trimmed = updates["dense_trimmed"]["seconds_per_update"]
    updates["default_full"]["seconds_per_update"] = 1.25 * trimmed * 1.001
    assert update_cost.targets(found)["default update <= 1.25x the trimmed copy's"] is False
    updates["default_full"]["seconds_per_update"] = 1.25 * trimmed * 0.999
    assert update_cost.targets(found)["default update <= 1.25x the trimmed copy's"] is True
    found["hf_trainer"]["train_words_per_second"] = updates["default_full"]["words_per_second"] * 1.001
    assert update_cost.targets(found)["our training words/s >= the Trainer's"] is False


def test_the_report_shows_each_stored_figure_in_benchmarks_md():
    found = stored_results()
    report = update_cost.report_markdown(found)
    assert report in (PROJECT_DIR / "BENCHMARKS.md").read_text()
    for name, row in found["updates"].items():
        assert f"| {update_cost.VARIANT_NAMES[name]} | " in report
        assert f"| {row['seconds_per_update']:.3f} |" in report
    assert f"{found['hf_trainer']['train_words_per_second']:,.0f} |" in report

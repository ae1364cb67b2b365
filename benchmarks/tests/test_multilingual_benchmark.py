"""The multilingual benchmark modes' own parts (benchmarks/modes/multilingual.py):
alignment health on an XLM-R tokenizer, targets, and the report rendered
into BENCHMARKS.md and between docs/multilingual.md's markers."""

import json
from pathlib import Path

import spacy
from modes import multilingual
from processes import PROJECT_DIR, RESULTS_DIR
from spacy.tokens import DocBin
from tiny_models import build_tiny_xlmr, fixture_texts


def test_alignment_health_counts_tokens_without_pieces_and_cut_windows(tmp_path: Path):
    encoder = build_tiny_xlmr(tmp_path / "xlmr", fixture_texts())
    nlp = spacy.blank("es")
    # accents, ñ, and characters the normalizer drops or maps (zero-width
    # space, soft hyphen): each token still gets a piece (a lone "▁" at worst)
    docs = [nlp("Castaño salió de Córdoba ."), nlp("Hola \u200b mundo \u00ad fin")]
    DocBin(docs=docs).to_disk(tmp_path / "docs.spacy")
    health = multilingual.alignment_health(str(encoder), tmp_path / "docs.spacy", "es")
    assert health["tokens"] == 10 and health["windows"] == 2
    assert health["tokens_without_piece"] == 0 and health["share_tokens_without_piece"] == 0.0
    assert health["windows_cut_short"] == 0 and health["pieces_per_window_token"] >= 1
    # a window of more pieces than the encoder takes is cut short
    long_doc = nlp(" ".join(["qxzñkvwjyñ" * 4] * 120))
    DocBin(docs=[long_doc]).to_disk(tmp_path / "long.spacy")
    assert multilingual.alignment_health(str(encoder), tmp_path / "long.spacy", "es")["windows_cut_short"] > 0


def stored_results() -> dict:
    return json.loads((RESULTS_DIR / "results_multilingual.json").read_text())


def test_targets_are_the_verdicts_of_the_stored_figures_and_flip_at_their_thresholds():
    found = stored_results()
    assert multilingual.targets(found, found["settings"]) == found["targets"]
    es = found["languages"]["es"]
    trainer = es["hf_trainer"]["dev"]["f1"]
    es["spacy_trf"]["dev"]["f1"] = trainer + 0.0101
    assert multilingual.targets(found, found["settings"])["es: ours dev F1 >= Trainer + 1.0"] is True
    es["spacy_trf"]["dev"]["f1"] = trainer + 0.0099
    assert multilingual.targets(found, found["settings"])["es: ours dev F1 >= Trainer + 1.0"] is False
    es["spacy_multi"]["dev"]["f1"] = es["spacy_trf"]["dev"]["f1"] - 0.011
    assert multilingual.targets(found, found["settings"])["es: joint pipeline within 1.0 of ours per language"] is False
    # a system the run skipped has no target
    del found["languages"]["nl"]["spacy_cnn"]
    assert "nl: ours dev F1 >= CNN + 5" not in multilingual.targets(found, found["settings"])


def test_docs_page_gets_the_report_between_its_markers_only(tmp_path: Path):
    found = stored_results()
    page = tmp_path / "multilingual.md"
    page.write_text(f"Intro\n\n{multilingual.DOCS_START}\nold\n{multilingual.DOCS_END}\n\nEnd\n")
    multilingual.render_docs(page, [(found, "benchmarks/curves.png")])
    rendered = page.read_text()
    assert rendered.startswith("Intro") and rendered.endswith("End\n") and "\nold\n" not in rendered
    assert "](../benchmarks/curves.png)" in rendered
    # the docs state each language's figures as BENCHMARKS.md does
    benchmarks = (PROJECT_DIR / "BENCHMARKS.md").read_text()
    for entry in found["languages"].values():
        ours = f"**{entry['spacy_trf']['dev']['f1'] * 100:.2f}**"
        assert ours in rendered and ours in benchmarks


def test_readme_table_gives_each_language_and_system_its_row():
    import readme_table

    found = stored_results()
    table = readme_table.multilingual_table(found)
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| es ") or line.startswith("| nl ")]
    expected = [
        (lang, key)
        for lang, entry in found["languages"].items()
        for key, _ in readme_table.MULTILINGUAL_SYSTEMS
        if key in entry
    ]
    assert len(rows) == len(expected)
    all_sentences = sum(d["train"]["sentences"] for d in found["data"].values())
    for row, (lang, key) in zip(rows, expected):
        assert row[0] == f"| {lang}" and float(row[3]) == round(found["languages"][lang][key]["dev"]["f1"] * 100, 2)
        sentences = all_sentences if key == "spacy_multi" else found["data"][lang]["train"]["sentences"]
        assert row[2] == f"{sentences:,}"
    assert readme_table.multilingual_table(None) == ""

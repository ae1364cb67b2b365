"""The multilingual benchmark modes' own parts (benchmarks/multilingual.py):
alignment health on an XLM-R tokenizer, targets, and the report rendered
into BENCHMARKS.md and between docs/multilingual.md's markers."""

import sys
from pathlib import Path

import spacy
from conftest import PROJECT_DIR
from spacy.tokens import DocBin
from tiny_models import build_tiny_xlmr, fixture_texts

sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
import multilingual  # noqa: E402
import run_benchmark  # noqa: E402


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


def system(f1: float, seconds: float = 100.0) -> dict:
    return {
        "dev": {"precision": f1, "recall": f1, "f1": f1},
        "train": {
            "epochs": 2,
            "steps": 10,
            "train_seconds": seconds,
            "curve": [{"epoch": 0.0, "step": 0, "f1": 0.0}, {"epoch": 1.0, "step": 5, "f1": f1}],
        },
    }


def results() -> dict:
    alignment = {
        "tokens": 10,
        "tokens_without_piece": 0,
        "share_tokens_without_piece": 0.0,
        "windows": 1,
        "windows_cut_short": 0,
        "share_windows_cut_short": 0.0,
        "pieces_per_window_token": 1.3,
        "examples_without_piece": [],
    }
    found = {
        "command": "run_benchmark.py run --mode multilingual",
        "date": "2026-01-01T00:00:00+00:00",
        "machine": {"cpu": "CPU", "cores": 2, "platform": "Linux"},
        "mode": "multilingual",
        "settings": {"epochs": 2, "cnn_epochs": 0, "hf_batch_size": 16},
        "encoder": {"build": {"parameters": 117653760}},
        "data": {
            lang: {"train": {"sentences": 5, "words": 50}, "dev": {"sentences": 2, "words": 20}}
            for lang in ("es", "nl")
        },
        "languages": {
            "es": {
                "alignment": {"train": alignment, "dev": alignment},
                "spacy_trf": system(0.8512),
                "hf_trainer": system(0.8311),
                "spacy_cnn": system(0.7734),
                "spacy_multi": system(0.8455),
            },
            "nl": {
                "alignment": {"train": alignment, "dev": alignment},
                "spacy_trf": system(0.8),
                "hf_trainer": system(0.795),
                "spacy_cnn": system(0.70),
                "spacy_multi": system(0.7),
            },
        },
    }
    found["targets"] = multilingual.targets(found, found["settings"])
    return found


def test_targets_follow_the_issue():
    targets = results()["targets"]
    assert targets == {
        "es: ours dev F1 >= Trainer + 1.0": True,
        "es: ours dev F1 >= CNN + 5": True,
        "es: joint pipeline within 1.0 of ours per language": True,
        "nl: ours dev F1 >= Trainer + 1.0": False,
        "nl: ours dev F1 >= CNN + 5": True,
        "nl: joint pipeline within 1.0 of ours per language": False,
    }


def test_report_is_rendered_into_benchmarks_md_and_the_docs(tmp_path: Path):
    found = results()
    benchmarks = tmp_path / "BENCHMARKS.md"
    run_benchmark.write_benchmarks_md(benchmarks, None, None, "x.png", [(found, "benchmarks/curves.png")])
    text = benchmarks.read_text()
    assert text.startswith("# Benchmarks") and "Spanish and Dutch with multilingual-e5-small" in text
    assert "4-bit-dequantized multilingual-e5-small, not mBERT or XLM-R" in text
    assert "| es | spaCy transformer+ner (ours) | 5 | 50 | 20 | 85.12 | 85.12 | **85.12** | 2 | 10 | 100 |" in text
    assert "- nl: ours dev F1 >= Trainer + 1.0: missed" in text
    page = tmp_path / "multilingual.md"
    page.write_text(f"Intro\n\n{multilingual.DOCS_START}\nold\n{multilingual.DOCS_END}\n\nEnd\n")
    multilingual.render_docs(page, [(found, "benchmarks/curves.png")], run_benchmark.mode_header)
    rendered = page.read_text()
    assert rendered.startswith("Intro") and rendered.endswith("End\n") and "old" not in rendered
    assert "### Spanish and Dutch" in rendered and "](../benchmarks/curves.png)" in rendered
    # the docs state the same figures as BENCHMARKS.md
    assert "**85.12**" in rendered and "**83.11**" in rendered


def test_readme_table_names_the_encoder_and_gives_each_language_its_rows():
    sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
    import readme_table

    table = readme_table.multilingual_table(results())
    assert "4-bit weights dequantized, not mBERT or XLM-R" in table
    # one row per language and system, the joint pipeline counting every language's sentences
    rows = [line for line in table.splitlines() if line.startswith("| es ") or line.startswith("| nl ")]
    assert len(rows) == 8
    assert (
        "| es | spaCy transformer+ner, configs/transformer.cfg's default recipe | 5 | 85.12 | 100 s (2 epochs) |"
        in rows
    )
    assert "| nl | spaCy transformer+ner, one pipeline for en+es+nl | 10 | 70.00 | 100 s (2 epochs) |" in rows
    assert readme_table.multilingual_table(None) == ""

import importlib.util
import json
import shutil

import pytest
import spacy
import typer
from conftest import PROJECT_DIR
from fixtures import DUTCH, ENGLISH_TRAIN, SPANISH
from project_utils import copy_project, run_project, write_fixture_assets
from spacy.tokens import DocBin
from typer.testing import CliRunner

from conll_ner.data.conll import read_conll_file
from conll_ner.data.docbin import conll_to_docbin


def convert(input_path, output, *args):
    """scripts/convert.py's command, run in this process through typer as on
    the command line, without an interpreter and spaCy start-up per call (the
    workflow tests run it as a subprocess)."""
    spec = importlib.util.spec_from_file_location("convert_script", PROJECT_DIR / "scripts" / "convert.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = typer.Typer()
    app.command()(module.main)
    return CliRunner().invoke(app, [str(input_path), str(output), *args])


def load_docs(path, lang):
    return list(DocBin().from_disk(path).get_docs(spacy.blank(lang).vocab))


@pytest.mark.parametrize("n_sents,expected_docs", [(1, 3), (2, 2), (0, 2)])
def test_grouping_keeps_sentence_and_document_boundaries(write_file, n_sents, expected_docs):
    conll = read_conll_file(write_file("eng.train", ENGLISH_TRAIN))
    doc_bin, stats = conll_to_docbin(conll.sentences, spacy.blank("en").vocab, n_sents=n_sents)
    docs = list(doc_bin.get_docs(spacy.blank("en").vocab))
    assert len(docs) == stats.docs_written == expected_docs
    assert sum(len(list(doc.sents)) for doc in docs) == 3
    # no Doc mixes the two documents: the second starts with "In"
    assert [doc[0].text for doc in docs if doc[0].text == "In"] == ["In"]
    ents = [(e.text, e.label_) for doc in docs for e in doc.ents]
    assert ents == [
        ("EU", "ORG"),
        ("German", "MISC"),
        ("Peter Blackburn", "PER"),
        ("Rome", "LOC"),
        ("Hapoel Haifa", "ORG"),
        ("Hapoel Tel", "ORG"),
    ]


def test_statistics_and_repairs(write_file):
    conll = read_conll_file(write_file("esp.train", SPANISH, encoding="latin-1"))
    _, stats = conll_to_docbin(conll.sentences, spacy.blank("es").vocab, n_sents=1, documents=conll.documents)
    assert stats.scheme == "IOB2" and stats.repaired_tags == 1
    assert stats.entities == {"LOC": 3, "ORG": 1, "PER": 1} and stats.entities_total == 5
    assert (stats.sentences, stats.tokens) == (2, 19)


def test_no_document_markers_warns_when_grouping_by_document(write_file):
    conll = read_conll_file(write_file("esp.train", SPANISH, encoding="latin-1"))
    _, stats = conll_to_docbin(conll.sentences, spacy.blank("es").vocab, n_sents=0, documents=0)
    assert stats.docs_written == 1 and "no -DOCSTART-" in stats.warnings[0]


def test_cli_writes_docbin_and_stats(write_file, tmp_path):
    source = write_file("ned.train", DUTCH, encoding="latin-1")
    output = tmp_path / "out" / "nl.spacy"
    result = convert(source, output, "--lang", "nl", "--n-sents", "0")
    assert result.exit_code == 0, result.output
    assert "3 sentences" in result.output and "PER 1" in result.output
    stats = json.loads((tmp_path / "out" / "nl.stats.json").read_text())
    assert stats["encoding"] == "latin-1" and stats["documents"] == 2 and stats["docs_written"] == 2
    docs = load_docs(output, "nl")
    assert [(e.text, e.label_) for d in docs for e in d.ents] == [("Verberckmoes", "PER"), ("België", "LOC")]
    # re-running overwrites cleanly
    assert convert(source, output, "--lang", "nl", "--n-sents", "1").exit_code == 0
    assert len(load_docs(output, "nl")) == 3
    assert sorted(p.name for p in output.parent.iterdir()) == ["nl.spacy", "nl.stats.json"]


@pytest.mark.parametrize("lang", ["en", "es", "nl", "xx"])
def test_cli_writes_what_a_blank_pipelines_vocabulary_gives(write_file, tmp_path, lang):
    """The script builds the vocabulary without spacy.blank (which imports every pipeline factory); the
    DocBin must be byte for byte the one spacy.blank's vocabulary gives (norms and all)."""
    source = write_file("esp.train", SPANISH, encoding="latin-1")
    output = tmp_path / f"{lang}.spacy"
    assert convert(source, output, "--lang", lang, "--n-sents", "2").exit_code == 0
    conll = read_conll_file(source)
    expected, _ = conll_to_docbin(conll.sentences, spacy.blank(lang).vocab, n_sents=2, documents=conll.documents)
    assert output.read_bytes() == expected.to_bytes()


@pytest.mark.parametrize(
    "content,expected",
    [
        (b"EU NNP I-NP I-ORG\nrejects VBZ O\n", "bad.conll:2: expected 4 columns"),
        (b"EU B-ORG\nfoo Z-ORG\n", "bad.conll:2: unknown NER tag 'Z-ORG'"),
        (b"", "bad.conll: the file is empty"),
        (b"EU B-ORG\n\x81 O\n", "bad.conll:2: undecodable byte 0x81"),
    ],
)
def test_cli_bad_input_fails_and_writes_nothing(write_file, tmp_path, content, expected):
    output = tmp_path / "out" / "x.spacy"
    output.parent.mkdir()
    result = convert(write_file("bad.conll", content), output, "--lang", "en")
    assert result.exit_code != 0
    assert expected in result.output
    assert list(output.parent.iterdir()) == []


def test_cli_missing_input_names_the_file(tmp_path):
    result = convert(tmp_path / "nope.train", tmp_path / "x.spacy", "--lang", "en")
    assert result.exit_code != 0 and "nope.train: no such file" in result.output


REAL_FILES = {
    # file: (lang, sentences, tokens, entities per type, documents)
    "conll2003/eng.train": ("en", 14041, 203621, {"PER": 6600, "ORG": 6321, "LOC": 7140, "MISC": 3438}, 946),
    "conll2003/eng.testa": ("en", 3250, 51362, {"PER": 1842, "ORG": 1341, "LOC": 1837, "MISC": 922}, 216),
    "conll2002/esp.train": ("es", 8323, 264715, {"PER": 4321, "ORG": 7390, "LOC": 4914, "MISC": 2173}, 0),
    "conll2002/esp.testa": ("es", 1915, 52923, {"PER": 1222, "ORG": 1700, "LOC": 985, "MISC": 445}, 0),
    "conll2002/ned.train": ("nl", 15806, 202644, {"PER": 4716, "ORG": 2082, "LOC": 3208, "MISC": 3338}, 287),
    "conll2002/ned.testa": ("nl", 2895, 37687, {"PER": 703, "ORG": 686, "LOC": 479, "MISC": 748}, 74),
}


@pytest.mark.parametrize("relative", sorted(REAL_FILES))
def test_real_files_match_official_counts(shared_file, tmp_path, relative):
    lang, sentences, tokens, entities, documents = REAL_FILES[relative]
    output = tmp_path / "out.spacy"
    result = convert(shared_file(relative), output, "--lang", lang)
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "out.stats.json").read_text())
    assert (stats["sentences"], stats["tokens"], stats["documents"]) == (sentences, tokens, documents)
    assert stats["entities"] == entities
    # Spanish files each hold one entity that wrongly starts with I-
    assert stats["repaired_tags"] == (1 if lang == "es" else 0)
    docs = load_docs(output, lang)
    assert sum(len(d) for d in docs) == tokens
    assert sum(len(list(d.sents)) for d in docs) == sentences
    assert sum(len(d.ents) for d in docs) == sum(entities.values())


def test_the_convert_step_converts_the_folder_and_reruns_only_when_a_file_changes(tmp_path):
    """project.yml's convert takes the folder of splits: weasel's checksum of
    a folder dependency skips an unchanged rerun and reruns after a change."""
    project = copy_project(tmp_path / "project")
    write_fixture_assets(project)
    shutil.copytree(project / "assets", project / "corpus" / "conll")
    first = run_project(project, "convert")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    written = sorted(str(path.relative_to(project / "corpus")) for path in (project / "corpus").glob("*/*.spacy"))
    assert written == [f"{split}/{lang}.spacy" for split in ("dev", "test", "train") for lang in ("en", "es", "nl")]
    assert load_docs(project / "corpus" / "dev" / "es.spacy", "es")[0].ents
    again = run_project(project, "convert")
    assert again.returncode == 0 and "Skipping 'convert': nothing changed" in again.stdout, again.stdout
    spanish = project / "corpus" / "conll" / "conll2002" / "esp.testa"
    spanish.write_bytes(spanish.read_bytes().replace(b"B-LOC", b"B-PER", 1))
    changed = run_project(project, "convert")
    assert changed.returncode == 0 and "Skipping" not in changed.stdout, changed.stdout
    labels = [ent.label_ for doc in load_docs(project / "corpus" / "dev" / "es.spacy", "es") for ent in doc.ents]
    assert labels.count("PER") == 1 + [
        ent.label_ for doc in load_docs(project / "corpus" / "test" / "es.spacy", "es") for ent in doc.ents
    ].count("PER")


def test_a_folder_without_every_split_names_the_missing_ones(tmp_path):
    (tmp_path / "conll" / "conll2003").mkdir(parents=True)
    result = convert(tmp_path / "conll", tmp_path / "corpus")
    assert result.exit_code == 1
    assert "lacks 9 split(s)" in result.output and "conll2002/ned.testb" in result.output
    assert not (tmp_path / "corpus").exists()
    both = convert(tmp_path / "conll", tmp_path / "corpus", "--lang", "en")
    assert both.exit_code == 1 and "Give a CoNLL file with --lang, or a folder" in both.output

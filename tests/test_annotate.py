"""Annotating corpora: shards, resume, long texts, bad input, both engines.

The pipeline is a blank English one with an entity ruler named `ner`: fast,
deterministic and context-free, so the entities of a text cut into pieces
must equal those of the whole text."""

import json
import os
import sys

import pytest
import spacy
from project_utils import copy_project, run_project
from spacy.language import Language

from conll_ner.inference.annotate import annotate
from conll_ner.inference.annotator import ModelIdentity, annotate_records, load_pipeline, model_identity
from conll_ner.inference.corpus import Record, Shard, read_records
from conll_ner.inference.long_texts import split_text
from conll_ner.inference.manifest import DONE_FILE, MANIFEST_FILE
from conll_ner.inference.ray_engine import import_ray
from conll_ner.inference.settings import AnnotateError, Settings

PATTERNS = [
    {"label": "PER", "pattern": "Ada Lovelace"},
    {"label": "LOC", "pattern": "London"},
    {"label": "ORG", "pattern": [{"LOWER": "acme"}, {"LOWER": "corp"}]},
]
MAX_CHARS = 200
# paragraphs of 90 characters and a blank line: two fill 184 of a 200-character piece
PARAGRAPH = "Ada Lovelace met the Acme Corp board in London; Acme Corp then met Ada Lovelace. Parts {:02d}."
LONG_TEXT = "\n\n".join(PARAGRAPH.format(index) for index in range(9))
SETTINGS = dict(max_chars=MAX_CHARS, max_text_chars=5_000, batch_size=4, show_progress=False)


def save_ruler(path, patterns, version="1.0.0"):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler", name="ner").add_patterns(patterns)
    nlp.meta.update({"name": "ruler", "version": version})
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_ruler(tmp_path_factory.mktemp("model") / "ruler", PATTERNS)


@pytest.fixture
def corpus(tmp_path):
    """Three shards in a folder: JSONL with the awkward documents, plain text
    and parquet, one of them in a subfolder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "corpus"
    (folder / "more").mkdir(parents=True)
    lines = [
        json.dumps({"id": "a1", "text": "Ada Lovelace lived in London."}).encode(),
        json.dumps({"id": "a2", "text": ""}).encode(),
        json.dumps({"id": "a3", "text": "  \n "}).encode(),
        b'{"id": "a4", "text": "broken',
        b"\xff\xfe not UTF-8",
        json.dumps({"id": "a6", "body": "no text field"}).encode(),
        json.dumps({"text": "No id: Acme Corp is here."}).encode(),
        b"",
        json.dumps({"id": 9, "text": LONG_TEXT}).encode(),
        json.dumps({"id": "a10", "text": "London " * 1000}).encode(),
    ]
    (folder / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (folder / "b.txt").write_text("London calling.\n\nAda Lovelace and ACME corp met.\n", encoding="utf8")
    texts = [f"Document {i} about London and Ada Lovelace." for i in range(30)]
    pq.write_table(pa.table({"id": list(range(100, 130)), "text": texts}), folder / "more" / "c.parquet")
    (folder / "notes.md").write_text("not an input", encoding="utf8")
    return folder


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


def entities_of(nlp, text, offset=0):
    return [
        {"start_char": e.start_char + offset, "end_char": e.end_char + offset, "label": e.label_, "text": e.text}
        for e in nlp(text).ents
    ]


def outputs(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.jsonl")) if p.name != DONE_FILE
    }


def test_split_text_prefers_paragraphs_then_sentences_then_spaces():
    assert split_text(LONG_TEXT, MAX_CHARS) == [(0, 184), (184, 368), (368, 552), (552, 736), (736, len(LONG_TEXT))]
    sentences = "One sentence here. " * 20
    pieces = split_text(sentences, 100)
    assert all(sentences[start:end].endswith(". ") for start, end in pieces[:-1])
    words = "word " * 100
    assert all(end - start <= 100 and words[start:end].endswith(" ") for start, end in split_text(words, 100)[:-1])
    assert split_text("x" * 250, 100) == [(0, 100), (100, 200), (200, 250)]
    for text in (LONG_TEXT, sentences, words):
        pieces = split_text(text, 100)
        assert "".join(text[start:end] for start, end in pieces) == text
        assert all(0 < end - start <= 100 for start, end in pieces)


def test_long_text_entities_equal_the_pieces_annotated_by_hand(model):
    nlp = spacy.load(model)
    settings = Settings(max_chars=MAX_CHARS, batch_size=2)
    [row] = annotate_records(nlp, [Record(0, 1, "long", LONG_TEXT)], settings)
    # by hand: two paragraphs (184 characters with their blank lines) a piece
    by_hand = [
        entity
        for start in range(0, len(LONG_TEXT), 184)
        for entity in entities_of(nlp, LONG_TEXT[start : start + 184], offset=start)
    ]
    found = [vars(entity) for entity in row.entities]
    assert len(found) == 9 * 5 and found == by_hand
    assert all(LONG_TEXT[e["start_char"] : e["end_char"]] == e["text"] for e in found)
    assert found == entities_of(nlp, LONG_TEXT)


def test_memory_zone_keeps_the_string_store_from_growing(model):
    nlp = spacy.load(model)
    records = [Record(0, i, i, f"Ada Lovelace wrote unseenword{i} in London.") for i in range(50)]
    before = len(nlp.vocab.strings)
    rows = annotate_records(nlp, records, Settings(batch_size=8))
    assert len(nlp.vocab.strings) == before
    assert all([e.label for e in row.entities] == ["PER", "LOC"] for row in rows)


@Language.component("fails_on_boom")
def fails_on_boom(doc):
    if "boom" in doc.text:
        raise ValueError("boom")
    return doc


def test_a_text_that_breaks_the_pipeline_is_an_error_row_and_the_rest_of_its_batch_is_annotated(model):
    nlp = spacy.load(model)
    nlp.add_pipe("fails_on_boom")
    texts = ["London", "boom in London", "Ada Lovelace", "London again", "Acme Corp", "London"]
    rows = annotate_records(nlp, [Record(0, i, i, text) for i, text in enumerate(texts)], Settings(batch_size=2))
    assert [row.error for row in rows] == [None, "1: the pipeline failed on this text: ValueError('boom')"] + [None] * 4
    assert [[e.text for e in row.entities] for row in rows] == [
        ["London"],
        [],
        ["Ada Lovelace"],
        ["London"],
        ["Acme Corp"],
        ["London"],
    ]
    # the failed batch counts once, on the row it was retried from (nlp.pipe had yielded "London")
    assert [row.retried_batches for row in rows] == [0, 1, 0, 0, 0, 0]


def test_the_summary_counts_batches_retried_text_by_text(tmp_path):
    nlp = spacy.load(save_ruler(tmp_path / "ruler", PATTERNS))
    nlp.add_pipe("fails_on_boom")
    nlp.to_disk(tmp_path / "fragile")
    texts = ["London", "boom", "Ada Lovelace", "London", "Acme Corp", "London", "London", "boom again"]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    summary = annotate(tmp_path / "fragile", tmp_path / "in.jsonl", tmp_path / "out", **SETTINGS)
    # batches of 4: texts 1-4 are retried one by one after "boom", then text 7 after "boom again"; both fail again
    assert (summary["retried_batches"], summary["documents_done"], summary["documents_failed"]) == (2, 6, 2)
    clean = annotate(save_ruler(tmp_path / "plain", PATTERNS), tmp_path / "in.jsonl", tmp_path / "out2", **SETTINGS)
    assert (clean["retried_batches"], clean["documents_done"]) == (0, 8)


def test_annotate_writes_one_shard_per_input_with_every_document(model, corpus, tmp_path):
    (corpus / "empty.txt").write_bytes(b"")
    output = tmp_path / "out"
    summary = annotate(model, corpus, output, **SETTINGS)
    assert sorted(outputs(output)) == ["a.jsonl", "b.jsonl", "empty.jsonl", "more/c.jsonl"]
    assert (output / "empty.jsonl").read_bytes() == b""
    assert (output / MANIFEST_FILE).is_file()
    a = read_jsonl(output / "a.jsonl")
    assert [row["id"] for row in a] == ["a1", "a2", "a3", "a.jsonl:4", "a.jsonl:5", "a6", "a.jsonl:7", 9, "a10"]
    rows = {row["id"]: row for row in a}
    assert rows["a1"]["entities"] == [
        {"start_char": 0, "end_char": 12, "label": "PER", "text": "Ada Lovelace"},
        {"start_char": 22, "end_char": 28, "label": "LOC", "text": "London"},
    ]
    # empty and whitespace-only texts: rows without entities, not errors
    assert rows["a2"] == rows["a3"] | {"id": "a2"} == {"id": "a2", "entities": [], "error": None}
    # broken JSON and undecodable bytes: error rows naming file and line
    assert "a.jsonl:4: broken JSON (Invalid control character" in rows["a.jsonl:4"]["error"]
    assert "a.jsonl:5: not UTF-8" in rows["a.jsonl:5"]["error"]
    assert "a.jsonl:6: no 'text' string field" in rows["a6"]["error"]
    assert rows["a.jsonl:7"]["entities"][0]["text"] == "Acme Corp"
    assert rows[9]["entities"] == entities_of(spacy.load(model), LONG_TEXT)
    assert "7000 characters is over the limit of 5000" in rows["a10"]["error"] and rows["a10"]["entities"] == []
    b = read_jsonl(output / "b.jsonl")
    assert [row["id"] for row in b] == ["b.txt:1", "b.txt:2", "b.txt:3"]
    assert [[e["label"] for e in row["entities"]] for row in b] == [["LOC"], [], ["PER", "ORG"]]
    c = read_jsonl(output / "more" / "c.jsonl")
    assert [row["id"] for row in c] == list(range(100, 130))
    assert all(row["entities"][0]["text"] == "London" for row in c)
    assert summary["shards_done"] == 4 and summary["shards_skipped"] == summary["shards_failed"] == 0
    assert (summary["documents_done"], summary["documents_failed"], summary["documents_skipped"]) == (38, 4, 0)
    # the speeds are the annotated words and documents over the run's time
    assert summary["words_per_second"] == pytest.approx(summary["words"] / summary["seconds"], rel=0.01)
    assert summary["documents_per_second"] == pytest.approx(42 / summary["seconds"], rel=0.01)  # done and failed
    # the first document came back within the run, after the pipeline had loaded
    assert 0 < summary["first_output_seconds"] < summary["seconds"]


def test_a_rerun_skips_finished_shards_and_redoes_missing_or_partial_ones(model, corpus, tmp_path):
    output = tmp_path / "out"
    annotate(model, corpus, output, **SETTINGS)
    first = outputs(output)
    stamps = {name: (output / name).stat().st_mtime_ns for name in first}
    again = annotate(model, corpus, output, **SETTINGS)
    assert (again["shards_done"], again["shards_skipped"], again["documents_skipped"]) == (0, 3, 42)
    assert {name: (output / name).stat().st_mtime_ns for name in first} == stamps
    (output / "b.jsonl").unlink()
    redone = annotate(model, corpus, output, **SETTINGS)
    assert (redone["shards_done"], redone["shards_skipped"], redone["documents_done"]) == (1, 2, 3)
    assert outputs(output) == first
    assert (output / "a.jsonl").stat().st_mtime_ns == stamps["a.jsonl"]
    # a partial output (cut short) and a leftover temporary file of a killed run
    (output / "more" / "c.jsonl").write_bytes(first["more/c.jsonl"][:100])
    (output / "more" / ".c.jsonl.x1y2.tmp").write_text("half")
    redone = annotate(model, corpus, output, **SETTINGS)
    assert (redone["shards_done"], redone["documents_done"]) == (1, 30)
    assert outputs(output) == first and not list(output.rglob("*.tmp"))
    # an input edited since is annotated again
    with (corpus / "b.txt").open("a", encoding="utf8") as file:
        file.write("London\n")
    redone = annotate(model, corpus, output, **SETTINGS)
    assert redone["shards_done"] == 1 and len(read_jsonl(output / "b.jsonl")) == 4


def test_output_of_another_model_or_setting_is_refused(model, corpus, tmp_path):
    output = tmp_path / "out"
    annotate(model, corpus, output, **SETTINGS)
    before = outputs(output)
    # same name and version, other patterns: only the fingerprint differs
    other = save_ruler(tmp_path / "other", PATTERNS[:1])
    with pytest.raises(AnnotateError, match=r"another run \(model\.fingerprint: .*--no-resume"):
        annotate(other, corpus, output, **SETTINGS)
    with pytest.raises(AnnotateError, match=r"settings\.max_chars: 200 -> 300"):
        annotate(model, corpus, output, **{**SETTINGS, "max_chars": 300})
    assert outputs(output) == before
    replaced = annotate(other, corpus, output, resume=False, **SETTINGS)
    assert replaced["shards_done"] == 3
    assert [e["label"] for e in read_jsonl(output / "a.jsonl")[0]["entities"]] == ["PER"]
    manifest = json.loads((output / MANIFEST_FILE).read_text())
    assert manifest["model"] == vars(model_identity(other))


def test_an_output_folder_inside_the_input_folder_is_never_read_as_input(model, corpus):
    output = corpus / "annotations"
    first = annotate(model, corpus, output, **SETTINGS)
    again = annotate(model, corpus, output, **SETTINGS)
    assert first["shards"] == again["shards"] == again["shards_skipped"] == 3
    assert sorted(outputs(output)) == ["a.jsonl", "b.jsonl", "more/c.jsonl"]


def test_a_folder_not_written_by_annotate_is_refused(model, corpus, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "mine.jsonl").write_text("{}\n")
    with pytest.raises(AnnotateError, match="holds files but no manifest.json"):
        annotate(model, corpus, output, **SETTINGS)
    assert (output / "mine.jsonl").read_text() == "{}\n"


def test_an_unreadable_shard_fails_alone_and_is_retried(model, corpus, tmp_path):
    (corpus / "more" / "c.parquet").write_bytes(b"PAR1 not really parquet")
    output = tmp_path / "out"
    summary = annotate(model, corpus, output, **SETTINGS)
    assert (summary["shards_done"], summary["shards_failed"]) == (2, 1)
    assert "c.parquet" in summary["failed_shards"][0]
    assert sorted(outputs(output)) == ["a.jsonl", "b.jsonl"] and not list(output.rglob("*.tmp"))
    (corpus / "more" / "c.parquet").unlink()
    (corpus / "more" / "c.jsonl").write_text(json.dumps({"text": "London"}) + "\n")
    retried = annotate(model, corpus, output, **SETTINGS)
    assert (retried["shards_done"], retried["shards_skipped"], retried["shards_failed"]) == (1, 2, 0)


def test_parquet_output_and_glob_input(model, corpus, tmp_path):
    import pyarrow.parquet as pq

    output = tmp_path / "out"
    summary = annotate(model, str(corpus / "**" / "*.parquet"), output, output_format="parquet", **SETTINGS)
    assert summary["shards_done"] == 1
    table = pq.read_table(output / "more" / "c.parquet").to_pylist()
    assert [row["id"] for row in table] == [str(i) for i in range(100, 130)]
    assert table[0]["entities"][0] == {"start_char": 17, "end_char": 23, "label": "LOC", "text": "London"}


def test_overlong_lines_are_error_rows_never_read_whole(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("short\n" + "x" * 200_000 + "\nafter\n", encoding="utf8")
    settings = Settings(max_chars=100, max_text_chars=1000)
    records = list(read_records(Shard(0, path, "long.txt", "long.jsonl"), settings))
    assert [r.text for r in records] == ["short", None, "after"]
    assert "long.txt:2: line of over" in records[1].error


def test_two_spawn_workers_give_the_same_output_as_one(model, corpus, tmp_path):
    one = annotate(model, corpus, tmp_path / "one", **SETTINGS)
    two = annotate(model, corpus, tmp_path / "two", workers=2, **SETTINGS)
    assert outputs(tmp_path / "one") == outputs(tmp_path / "two")
    assert (one["documents_done"], one["words"]) == (two["documents_done"], two["words"])


def test_a_worker_refuses_another_pipeline_than_the_run_started_with(model):
    with pytest.raises(AnnotateError, match="loads as en_ruler 1.0.0 here"):
        load_pipeline(model, ModelIdentity("en_ruler", "2.0.0", "x"), Settings())


def test_the_ray_engine_says_how_to_install_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(AnnotateError, match=r"pip install -r requirements-ray.txt"):
        import_ray()


@pytest.fixture(scope="module")
def ray_instance():
    """One small local Ray instance for the module's Ray tests."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        pytest.skip("ray is not installed (pip install -r requirements-ray.txt)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_the_ray_engine_gives_the_local_engines_output(ray_instance, model, corpus, tmp_path):
    local = annotate(model, corpus, tmp_path / "local", **SETTINGS)
    remote = annotate(model, corpus, tmp_path / "ray", engine="ray", **SETTINGS)
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")
    assert ray_instance.is_initialized()
    assert {key: remote[key] for key in ("shards_done", "documents_done", "documents_failed", "words")} == {
        key: local[key] for key in ("shards_done", "documents_done", "documents_failed", "words")
    }
    # a rerun through Ray skips what is done
    again = annotate(model, corpus, tmp_path / "ray", engine="ray", **SETTINGS)
    assert (again["shards_done"], again["shards_skipped"]) == (0, 3)


def test_the_annotate_command_of_the_project(model, corpus, tmp_path):
    project = copy_project(tmp_path / "project")
    result = run_project(
        project,
        "annotate",
        {"model": str(model), "input": str(corpus / "*.txt"), "output": "annotations/test", "max_chars": "500"},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Documents: 3 done, 0 skipped, 0 failed; shards: 1 done, 0 skipped, 0 failed" in " ".join(
        result.stdout.split()
    )
    rows = read_jsonl(project / "annotations" / "test" / "b.jsonl")
    assert [row["id"] for row in rows] == ["b.txt:1", "b.txt:2", "b.txt:3"]
    assert os.path.isfile(project / "annotations" / "test" / MANIFEST_FILE)


def test_the_summary_says_what_failed_and_sums_up_the_run():
    from wasabi import Printer

    from conll_ner.inference.summary import report_problems, summary_line

    summary = {
        "failed_shards": ["c.jsonl: unreadable"],
        "documents_done": 1200,
        "documents_skipped": 3,
        "documents_failed": 2,
        "retried_batches": 1,
        "shards_done": 2,
        "shards_skipped": 1,
        "shards_failed": 1,
        "words": 45000,
        "seconds": 12.25,
        "documents_per_second": 97.96,
        "words_per_second": 3673.5,
        "first_output_seconds": 1.04,
    }
    printer = Printer(no_print=True)
    report_problems(summary, printer)
    assert (printer.counts["fail"], printer.counts["warn"]) == (1, 2)
    assert summary_line(summary, "out") == (
        "Documents: 1,200 done, 3 skipped, 2 failed; shards: 2 done, 1 skipped, 1 failed; 45,000 words in 12.2 s: "
        "98.0 documents/s, 3,674 words/s, the first after 1.0 s -> out"
    )

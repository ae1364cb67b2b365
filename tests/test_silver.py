"""distill-data at corpus scale: the teacher annotates through the annotate
engine, silver DocBins are built shard by shard, and both resume.

The teacher is an entity ruler named `ner` (fast, deterministic, context
free), so the silver entities of every text must be the teacher's own."""

import json

import pytest
import spacy
from fixtures import ENGLISH_TRAIN
from spacy.tokens import DocBin
from spacy.training import Corpus
from wasabi import Printer

import conll_ner.inference.annotate as annotate_module
import conll_ner.training.silver as silver_module
from conll_ner.data.conll import read_conll_file
from conll_ner.data.docbin import conll_to_docbin
from conll_ner.evaluation.teacher_student import compare_teacher_student
from conll_ner.inference.corpus import Record, input_files
from conll_ner.inference.long_texts import split_text
from conll_ner.inference.manifest import DONE_FILE
from conll_ner.inference.settings import AnnotateError, Settings
from conll_ner.training.distillation import (
    ANNOTATIONS_DIR,
    GOLD_FILE,
    SILVER_DIR,
    SUMMARY_FILE,
    DistillationError,
    TeacherLoadError,
    annotate_unlabelled,
    load_teacher,
)
from conll_ner.training.silver import SILVER_LOG, SilverStats, build_silver, silver_docs, teacher_tokenizer
from conll_ner.training.student_corpus import write_student_corpus

PATTERNS = {"PER": "Ada Lovelace", "ORG": "Acme", "LOC": "London", "MISC": "German"}
OPTIONS = dict(batch_size=4, show_progress=False)


def save_teacher(path, patterns=PATTERNS, version="1.0.0"):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler", name="ner")
    ruler.add_patterns([{"label": label, "pattern": pattern} for label, pattern in patterns.items()])
    nlp.meta.update({"name": "ruler", "version": version})
    nlp.to_disk(path)
    return str(path)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return save_teacher(tmp_path_factory.mktemp("teacher") / "ruler")


def texts_of(shard: int, count: int):
    """Texts that say which shard and line they come from, with entities."""
    return [f"Ada Lovelace wrote to Acme {shard}-{line} from London ." for line in range(count)]


@pytest.fixture
def unlabelled(tmp_path):
    """Five JSONL shards of a few documents each."""
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    for shard in range(5):
        lines = [json.dumps({"id": f"{shard}-{i}", "text": t}) for i, t in enumerate(texts_of(shard, 3 + shard))]
        (folder / f"part-{shard}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf8")
    return folder


def silver_contents(folder):
    """Every silver file's Docs as words and entities, by file name."""
    vocab = spacy.blank("en").vocab
    return {
        path.relative_to(folder).as_posix(): [
            ([t.text for t in doc], [(e.start, e.end, e.label_) for e in doc.ents], [t.ent_iob_ for t in doc])
            for doc in DocBin().from_disk(path).get_docs(vocab)
        ]
        for path in sorted(folder.rglob("*.spacy"))
    }


def distil(teacher, inputs, student, **options):
    """What distill-data does after its teacher checks: annotate, then build the silver shards."""
    warnings = []
    summary = annotate_unlabelled(teacher, inputs, student / ANNOTATIONS_DIR, warnings.append, **OPTIONS, **options)
    built = build_silver(student / ANNOTATIONS_DIR, student / SILVER_DIR, teacher_tokenizer(teacher), False)
    return summary, built, warnings


def test_silver_shards_hold_exactly_the_teachers_entities_on_its_tokens(teacher, unlabelled, tmp_path):
    summary, built, _ = distil(teacher, unlabelled, tmp_path / "student")
    assert (built.shards, built.built, built.reused) == (5, 5, 0)
    contents = silver_contents(tmp_path / "student" / SILVER_DIR)
    assert sorted(contents) == [f"part-{shard}.spacy" for shard in range(5)]
    nlp = spacy.load(teacher)
    for shard in range(5):
        expected = [
            ([t.text for t in doc], [(e.start, e.end, e.label_) for e in doc.ents])
            for doc in nlp.pipe(texts_of(shard, 3 + shard))
        ]
        assert [(words, ents) for words, ents, _ in contents[f"part-{shard}.spacy"]] == expected
    # tokens outside entities are O, not missing: the student learns them as O
    assert all(iob in ("B", "I", "O") for docs in contents.values() for _, _, tags in docs for iob in tags)
    assert built.stats.docs == summary["documents_done"] == 25 and built.stats.words == summary["words"]
    assert built.stats.entities == {"LOC": 25, "ORG": 25, "PER": 25}


class CountingDocBin(DocBin):
    """A DocBin that records each file spacy.Corpus reads and its Doc count."""

    reads = []

    def from_disk(self, path):
        super().from_disk(path)
        CountingDocBin.reads.append((path.name, len(self)))
        return self


def test_spacy_corpus_reads_the_student_folder_one_docbin_per_shard(teacher, unlabelled, tmp_path, monkeypatch):
    student = tmp_path / "student"
    distil(teacher, unlabelled, student)
    DocBin(docs=[spacy.blank("en")("Gold text .")]).to_disk(student / GOLD_FILE)
    monkeypatch.setattr("spacy.training.corpus.DocBin", CountingDocBin)
    CountingDocBin.reads = []
    docs = [eg.reference for eg in Corpus(student)(spacy.blank("en"))]
    # gold.spacy and each silver shard, one file at a time; the annotations' JSONL is not read
    assert CountingDocBin.reads == [(GOLD_FILE, 1)] + [(f"part-{shard}.spacy", 3 + shard) for shard in range(5)]
    assert len(docs) == 1 + 25 and docs[0].text == "Gold text ."


def interrupt_after(shards: int, stream):
    """A local engine whose run stops (as on Ctrl-C) once `shards` shards have ended."""

    def interrupted(*args, **kwargs):
        ended = 0
        for item in stream(*args, **kwargs):
            if ended == shards:
                raise KeyboardInterrupt
            yield item
            ended += isinstance(item, annotate_module.ShardEnd)

    return interrupted


@pytest.mark.parametrize("k", [1, 3])
def test_an_interrupted_run_resumes_and_gives_the_silver_of_an_uninterrupted_one(
    teacher, unlabelled, tmp_path, monkeypatch, k
):
    student = tmp_path / "student"
    with monkeypatch.context() as patch:
        patch.setattr(annotate_module, "local_stream", interrupt_after(k, annotate_module.local_stream))
        with pytest.raises(KeyboardInterrupt):
            distil(teacher, unlabelled, student)
    recorded = [json.loads(line) for line in (student / ANNOTATIONS_DIR / DONE_FILE).read_text().splitlines()]
    assert [r["output"] for r in recorded] == [f"part-{shard}.jsonl" for shard in range(k)]
    assert not list((student / ANNOTATIONS_DIR).glob(".*.tmp"))
    summary, built, _ = distil(teacher, unlabelled, student)
    # the rerun annotates the remaining shards only
    finished_before = sum(3 + shard for shard in range(k))
    assert (summary["shards_skipped"], summary["shards_done"]) == (k, 5 - k)
    assert (summary["documents_skipped"], summary["documents_done"]) == (finished_before, 25 - finished_before)
    uninterrupted_summary, uninterrupted, _ = distil(teacher, unlabelled, tmp_path / "uninterrupted")
    assert silver_contents(student / SILVER_DIR) == silver_contents(tmp_path / "uninterrupted" / SILVER_DIR)
    assert built.stats == uninterrupted.stats and uninterrupted_summary["documents_done"] == 25


def test_silver_files_resume_and_are_rebuilt_only_when_their_annotations_change(
    teacher, unlabelled, tmp_path, monkeypatch
):
    student = tmp_path / "student"
    real = silver_module.build_shard
    calls = []

    def crash_on_third(*args):
        calls.append(args[1].output)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args)

    with monkeypatch.context() as patch:
        patch.setattr(silver_module, "build_shard", crash_on_third)
        with pytest.raises(OSError, match="disk full"):
            distil(teacher, unlabelled, student)
    assert sorted(silver_contents(student / SILVER_DIR)) == ["part-0.spacy", "part-1.spacy"]
    _, built, _ = distil(teacher, unlabelled, student)
    assert (built.built, built.reused) == (3, 2)
    complete = silver_contents(student / SILVER_DIR)
    stamps = {p.name: p.stat().st_mtime_ns for p in (student / SILVER_DIR).glob("*.spacy")}
    # an input edited since: its shard is annotated again and its silver rebuilt, the others kept
    with (unlabelled / "part-2.jsonl").open("a", encoding="utf8") as file:
        file.write(json.dumps({"text": "London again ."}) + "\n")
    summary, built, _ = distil(teacher, unlabelled, student)
    assert (summary["shards_done"], built.built, built.reused) == (1, 1, 4)
    assert silver_contents(student / SILVER_DIR)["part-2.spacy"][-1][0] == ["London", "again", "."]
    assert all(
        p.stat().st_mtime_ns == stamps[p.name]
        for p in (student / SILVER_DIR).glob("*.spacy")
        if p.name != "part-2.spacy"
    )
    # an input file removed: its silver file goes too, or the student would train on it
    (unlabelled / "part-4.jsonl").unlink()
    _, built, _ = distil(teacher, unlabelled, student)
    assert built.shards == 4 and "part-4.spacy" not in silver_contents(student / SILVER_DIR)
    assert built.stats.docs == sum(len(docs) for name, docs in complete.items() if name != "part-4.spacy") + 1
    assert len((student / SILVER_DIR / SILVER_LOG).read_text().splitlines()) == 6


def test_another_teacher_replaces_the_annotations_and_the_silver(teacher, unlabelled, tmp_path):
    student = tmp_path / "student"
    distil(teacher, unlabelled, student)
    other = save_teacher(tmp_path / "other", {"LOC": "London"})  # same name and version, other patterns
    summary, built, warnings = distil(other, unlabelled, student)
    assert len(warnings) == 1 and "model.fingerprint" in warnings[0] and "annotating afresh" in warnings[0]
    assert (summary["shards_done"], summary["shards_skipped"], built.built) == (5, 0, 5)
    assert built.stats.entities == {"LOC": 25}


def test_a_text_over_the_teachers_max_length_lands_in_the_silver_corpus_in_pieces(teacher, tmp_path):
    paragraph = "Ada Lovelace met the Acme board in London. " * 20
    text = "\n\n".join([paragraph] * 1300)
    assert len(text) > spacy.load(teacher).max_length
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"text": text}) + "\n" + json.dumps({"text": "German ."}) + "\n", encoding="utf8")
    summary, built, _ = distil(teacher, path, tmp_path / "student", max_chars=10_000)
    assert (summary["documents_done"], summary["documents_failed"]) == (2, 0)
    pieces = split_text(text, 10_000)
    assert len(pieces) > 100 and built.stats.cut_texts == 1
    [(name, docs)] = silver_contents(tmp_path / "student" / SILVER_DIR).items()
    assert len(docs) == len(pieces) + 1 and built.stats.docs == len(pieces) + 1
    assert sum(len(ents) for _, ents, _ in docs[:-1]) == 3 * 20 * 1300 == built.stats.to_dict()["entities_total"] - 1
    assert built.stats.misaligned == 0


def test_a_misaligned_entity_is_counted_and_its_tokens_left_missing(teacher):
    nlp = teacher_tokenizer(teacher)
    assert nlp.pipe_names == []  # the tokenizer alone
    record = Record(0, 1, "x", "Ada Lovelace met Acme in London")
    row = {
        "error": None,
        "entities": [
            {"start_char": 0, "end_char": 12, "label": "PER"},
            {"start_char": 17, "end_char": 19, "label": "ORG"},  # "Ac": not on token boundaries
        ],
    }
    stats = SilverStats()
    [doc] = silver_docs(nlp, iter([(record, row)]), Settings(), stats)
    assert stats.misaligned == 1
    assert [t.ent_iob_ for t in doc] == ["B", "I", "O", "", "O", "O"]
    broken = {"error": "x.jsonl:2: broken JSON", "entities": []}
    assert list(silver_docs(nlp, iter([(Record(0, 2, "y", None, "broken"), broken)]), Settings(), stats)) == []
    assert stats.errors == 1


def test_a_docbin_is_not_unlabelled_input_and_says_what_to_do(tmp_path):
    DocBin().to_disk(tmp_path / "labelled.spacy")
    with pytest.raises(AnnotateError, match=r"labelled.spacy: a DocBin is not read as text.*write its texts as JSONL"):
        input_files(tmp_path / "labelled.spacy")


def gold_corpus(root):
    conll = root / "train.conll"
    conll.write_text(ENGLISH_TRAIN)
    doc_bin, _ = conll_to_docbin(read_conll_file(conll).sentences, spacy.blank("en").vocab, n_sents=1)
    (root / "corpus" / "train").mkdir(parents=True)
    doc_bin.to_disk(root / "corpus" / "train" / "en.spacy")
    return root / "corpus"


def run_data_step(teacher, unlabelled, student, corpus, capsys):
    """The distill-data step (scripts/distill.py data) with a batch size of 2; what it printed."""
    capsys.readouterr()
    write_student_corpus(
        teacher,
        student,
        Printer(),
        lang="en",
        unlabelled=str(unlabelled),
        gold_weight=1,
        corpus_dir=corpus,
        batch_size=2,
    )
    return capsys.readouterr().out


def test_the_data_step_counts_broken_lines_as_errors_and_resumes(teacher, tmp_path, capsys):
    corpus = gold_corpus(tmp_path)
    unlabelled = tmp_path / "news.jsonl"
    lines = [json.dumps({"text": "Ada Lovelace joined Acme ."}), '{"text": "broken', "", json.dumps({"text": "  "})]
    lines += [json.dumps({"text": "German news from London ."})]
    unlabelled.write_text("\n".join(lines) + "\n", encoding="utf8")
    student = tmp_path / "student"
    student.mkdir()
    DocBin().to_disk(student / "silver.spacy")  # what earlier versions wrote, which Corpus would read
    output = run_data_step(teacher, unlabelled, student, corpus, capsys)
    summary = json.loads((student / SUMMARY_FILE).read_text())
    # the broken line is an error row, counted; the blank JSONL line holds no document; the spaces are empty
    assert (summary["annotate"]["documents_done"], summary["annotate"]["documents_failed"]) == (3, 1)
    assert (summary["silver"]["docs"], summary["silver"]["errors"], summary["silver"]["empty"]) == (2, 1, 1)
    assert summary["silver"]["entities"] == {"LOC": 1, "MISC": 1, "ORG": 1, "PER": 1}
    assert summary["gold"]["docs"] == 3 and summary["teacher_pipeline"] == "en_ruler"
    assert "1 skipped for errors (their rows in" in " ".join(output.split())
    assert not (student / "silver.spacy").exists()
    docs = list(Corpus(student)(spacy.blank("en")))
    assert len(docs) == 3 + 2
    run_data_step(teacher, unlabelled, student, corpus, capsys)
    rerun = json.loads((student / SUMMARY_FILE).read_text())
    assert (rerun["annotate"]["shards_skipped"], rerun["annotate"]["documents_skipped"]) == (1, 4)
    assert (rerun["silver"]["built"], rerun["silver"]["reused"], rerun["silver"]["docs"]) == (0, 1, 2)


def test_a_teacher_spacy_cannot_load_says_what_to_give(tmp_path):
    with pytest.raises(TeacherLoadError, match="give a pipeline folder or an installed package name") as raised:
        load_teacher(str(tmp_path / "no-such-pipeline"))
    assert "no-such-pipeline" in raised.value.reason  # spaCy's own message, shown under it


def test_the_compare_step_scores_teacher_and_student_side_by_side(teacher, tmp_path):
    corpus = gold_corpus(tmp_path)
    (corpus / "dev").mkdir()
    (corpus / "dev" / "en.spacy").write_bytes((corpus / "train" / "en.spacy").read_bytes())
    quiet = Printer(no_print=True)
    with pytest.raises(DistillationError, match="run `spacy project run distill-data` first"):
        compare_teacher_student(teacher, teacher, tmp_path, tmp_path / "out.json", quiet, lang="en", corpus_dir=corpus)
    write_student_corpus(
        teacher, tmp_path / "student", quiet, lang="en", unlabelled="", gold_weight=1, corpus_dir=corpus
    )
    output = tmp_path / "metrics" / "distillation.json"
    result = compare_teacher_student(
        teacher, teacher, tmp_path / "student", output, quiet, lang="en", corpus_dir=corpus
    )
    assert json.loads(output.read_text()) == result
    assert result["teacher"] == teacher and result["student"] == teacher and result["gold"]["copies"] == 1
    assert set(result["dev"]) == {"teacher", "student"}
    assert result["dev"]["teacher"]["dev-en"] == result["dev"]["student"]["dev-en"]  # one pipeline, one score
    assert result["student_speedup"] > 0

"""The distill_scale mode of the benchmark, piece by piece on tiny inputs:
its input, its process-tree memory sampler and kill, its silver
comparison, its speed measurement and its report."""

import json
import subprocess
import sys
from collections import Counter

import process_tree
import pytest
import registry
import run_benchmark
import spacy
import srsly
from fixtures import DUTCH, ENGLISH_TRAIN, SPANISH
from modes import distill_scale
from processes import BENCH_DIR, PROJECT_DIR, measure_in_subprocess
from spacy.tokens import Doc, DocBin

from conll_ner.data.conll import read_conll_file

TINY_BERT = {
    "vocab_size": 30522,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The three training files as the release ships them, and a dev file."""
    root = tmp_path_factory.mktemp("data")
    for relative, text, encoding in (
        ("conll2003/eng.train", ENGLISH_TRAIN, "utf-8"),
        ("conll2003/eng.testa", ENGLISH_TRAIN, "utf-8"),
        ("conll2002/esp.train", SPANISH, "latin-1"),
        ("conll2002/ned.train", DUTCH, "latin-1"),
    ):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(text.encode(encoding))
    return root


def test_the_input_repeats_and_shuffles_the_sentences_of_all_three_languages(data_dir, tmp_path):
    sentences = [
        " ".join(s.words) for name in distill_scale.SOURCES for s in read_conll_file(data_dir / name).sentences
    ]
    stats = distill_scale.write_unlabelled(data_dir, tmp_path / "in", documents=50, shards=4, seed=0)
    files = sorted((tmp_path / "in").glob("*.jsonl"))
    texts = [json.loads(line)["text"] for path in files for line in path.read_text(encoding="utf8").splitlines()]
    assert len(files) == stats["shards"] == 4 and len(texts) == stats["documents"] == 50
    # every sentence as often as the others (give or take one), in a shuffled order
    counts = Counter(texts)
    assert set(counts) == set(sentences) and max(counts.values()) - min(counts.values()) <= 1
    assert texts != [sentences[i % len(sentences)] for i in range(50)]
    assert "Verberckmoes" in " ".join(texts) and "Sebastián" in " ".join(texts)
    assert stats["words"] == sum(len(text.split()) for text in texts)
    again = distill_scale.write_unlabelled(data_dir, tmp_path / "again", documents=50, shards=4, seed=0)
    assert again == stats and [p.read_bytes() for p in sorted((tmp_path / "again").glob("*.jsonl"))] == [
        p.read_bytes() for p in files
    ]
    distill_scale.write_unlabelled(data_dir, tmp_path / "other", documents=50, shards=4, seed=1)
    assert [p.read_bytes() for p in sorted((tmp_path / "other").glob("*.jsonl"))] != [p.read_bytes() for p in files]
    sample = distill_scale.first_shards(tmp_path / "in", tmp_path / "sample", 2)
    assert [p.name for p in sorted(sample.iterdir())] == [p.name for p in files[:2]]
    assert (sample / files[0].name).stat().st_ino == files[0].stat().st_ino  # linked, not copied


# a parent whose child holds 200 MB and says so in a line, then waits to be killed (or exits)
TREE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import sys, time; data = b'x' * (200 * 2**20); open(sys.argv[1], 'w').write('ready' + chr(10)); time.sleep(float(sys.argv[2]))", sys.argv[1], sys.argv[2]])
child.wait()
"""


def test_the_sampler_sums_the_process_tree_and_a_kill_takes_the_whole_group(tmp_path):
    ready = tmp_path / "ready"
    args = [sys.executable, "-c", TREE, str(ready)]
    finished = process_tree.measure_tree([*args, "1"], tmp_path, tmp_path / "finished.log", 0.05)
    assert finished["returncode"] == 0 and not finished["killed"]
    # the child's 200 MB and the two interpreters, summed; the kernel's peak is the child's alone
    assert finished["peak_tree_rss_mb"] > finished["largest_process_peak_rss_mb"] >= 200
    # each process's own sampled peak: the command's small, its child's the 200 MB
    own, *others = finished["processes"]
    assert own["peak_rss_mb"] < 150 and max(p["peak_rss_mb"] for p in others) >= 200
    assert any("200 * 2**20" in name for p in others for name in p["names"])
    ready.unlink()
    # killed once the child has written its line, with its parent and the launcher's other descendants
    killed = process_tree.measure_tree([*args, "600"], tmp_path, tmp_path / "killed.log", 0.05, None, ready, 1)
    assert killed["killed"] and killed["returncode"] == -9 and killed["seconds"] < 60
    orphans = subprocess.run(["pgrep", "-f", f"time.sleep.*{ready}"], capture_output=True, text=True)
    assert orphans.stdout == ""  # the grandchild went with the group


def write_silver(folder, entities):
    vocab = spacy.blank("en").vocab
    docs = [Doc(vocab, words=["Ada", "Lovelace", "wrote"], ents=entities), Doc(vocab, words=["London"], ents=["B-LOC"])]
    (folder / "more").mkdir(parents=True)
    DocBin(docs=docs, attrs=["ORTH", "SPACY", "ENT_IOB", "ENT_TYPE"]).to_disk(folder / "more" / "a.spacy")


def test_silver_folders_are_compared_by_their_docs(tmp_path):
    write_silver(tmp_path / "one", ["B-PER", "I-PER", "O"])
    write_silver(tmp_path / "two", ["B-PER", "I-PER", "O"])
    assert distill_scale.same_silver(tmp_path / "one", tmp_path / "two") == {"equal": True, "files": 1, "docs": 2}
    write_silver(tmp_path / "other", ["B-ORG", "I-ORG", "O"])
    assert not distill_scale.same_silver(tmp_path / "one", tmp_path / "other")["equal"]
    (tmp_path / "two" / "b.spacy").write_bytes((tmp_path / "two" / "more" / "a.spacy").read_bytes())
    assert not distill_scale.same_silver(tmp_path / "one", tmp_path / "two")["equal"]


def test_the_speed_pipelines_are_timed_on_the_same_sentences_in_one_process(data_dir, tmp_path):
    settings = {"base_teacher": TINY_BERT, "seed": 0}
    pipelines = distill_scale.build_speed_pipelines(data_dir, tmp_path, settings)
    teacher = spacy.load(pipelines["base_teacher"])
    encoder = teacher.get_pipe("transformer").model.transformer.config
    assert (encoder.hidden_size, encoder.num_hidden_layers, encoder.vocab_size) == (32, 1, 30522)
    # the student is the distill workflow's: configs/cnn.cfg with project.yml's student_overrides
    overrides = srsly.read_yaml(PROJECT_DIR / "project.yml")["vars"]["student_overrides"]
    student = spacy.load(pipelines["student"])
    assert pipelines["student_overrides"] == overrides
    assert (
        f"--components.tok2vec.model.encode.width {student.config['components']['tok2vec']['model']['encode']['width']}"
        == overrides
    )
    assert set(student.get_pipe("ner").labels) == set(teacher.get_pipe("ner").labels) == {"PER", "ORG", "LOC", "MISC"}
    # as the mode runs it: the harness's folder on the command's import path
    speed = measure_in_subprocess(
        distill_scale.speed_args(pipelines, data_dir / "conll2003" / "eng.testa", 0, 1), tmp_path / "speed.json"
    )
    dev = read_conll_file(data_dir / "conll2003" / "eng.testa").sentences
    assert (speed["sentences"], speed["words"], speed["torch_threads"]) == (len(dev), sum(len(s.words) for s in dev), 1)
    for role in ("base_teacher", "student"):
        assert speed[role]["runtime"]["device"] == "cpu" and speed[role]["batch_size"] >= 1
    assert speed["student"]["runtime"]["precision"] == "fp32"  # no transformer


def scale_results(modes_key="distill_scale_quick"):
    """A run's results as run_distill_scale returns them, with the header's keys."""

    def run(seconds, peak, documents, annotate=None, **extra):
        result = {"command": "spacy project run distill-data . --vars.lang en", "seconds": seconds}
        result.update(peak_tree_rss_mb=peak, largest_process_peak_rss_mb=peak / 2, documents=documents, **extra)
        return {**result, **({"annotate": annotate} if annotate else {})}

    def annotate(done, skipped, documents_done):
        return {"shards_done": done, "shards_skipped": skipped, "documents_done": documents_done, "documents_failed": 0}

    settings = json.loads((BENCH_DIR / "modes.json").read_text())[modes_key]
    return {
        "command": f"run_benchmark.py run --mode {modes_key}",
        "date": "2026-01-01",
        "mode": modes_key,
        "settings": settings,
        "machine": {"cpu": "cpu", "cores": 2, "platform": "linux"},
        "input": {
            "documents": 4000,
            "words": 60000,
            "sentences": 38170,
            "shards": 40,
            "documents_per_shard": 100,
            "sources": ["conll2003/eng.train", "conll2002/esp.train", "conll2002/ned.train"],
        },
        "teacher": {"train": {"steps": 20, "train_seconds": 30.0}, "dev_f1": 0.25},
        "runs": {
            "sample": run(20.0, 900.0, 400, annotate(4, 0, 400)),
            "all": run(60.0, 950.0, 4000, annotate(40, 0, 4000)),
            "resumed_killed": run(30.0, 940.0, 4000, at_kill={"shards_recorded": 21}),
            "resumed_rerun": run(40.0, 930.0, 4000, annotate(19, 21, 1900)),
        },
        "resume": {
            "kill_at_shards": 20,
            "shards_recorded": 21,
            "documents_recorded": 2100,
            "rows_of_shards_in_flight": 37,
            "silver_files": 0,
            "rerun_shards_skipped": 21,
            "rerun_shards_done": 19,
            "rerun_documents_skipped": 2100,
            "rerun_documents_done": 1900,
            "in_flight_bound": 640,
            "silver": {"equal": True, "files": 40, "docs": 4000},
        },
        "speed": {
            "sentences": 100,
            "words": 1500,
            "torch_threads": 2,
            "int8_built": False,
            "student_overrides": "--components.tok2vec.model.encode.width 96",
            "base_teacher": {"words_per_second": 900.0, "runtime": {"device": "cpu", "precision": "fp32"}},
            "student": {"words_per_second": 27000.0, "runtime": {"device": "cpu", "precision": "fp32"}},
        },
        "ratios": {
            "peak RSS (process tree), all documents / sample": 950 / 900,
            "CPU words/s, student / base-size teacher": 30.0,
        },
        "targets": {"student CPU words/s >= 10x the base-size teacher's": True},
        "remarks": ["a test run"],
    }


def test_the_mode_is_keyed_and_both_variants_have_the_same_settings():
    modes = json.loads((BENCH_DIR / "modes.json").read_text())
    assert set(modes["distill_scale"]) == set(modes["distill_scale_quick"])
    assert (
        modes["distill_scale"]["documents"] >= 1_000_000
        and modes["distill_scale"]["base_teacher"]["hidden_size"] == 768
    )
    assert registry.kind("distill_scale_quick") == "distill_scale" and registry.kind("distill_quick") == "distill"
    results = scale_results()
    stored = run_benchmark.merged_results("distill_scale", results, {"distill": {"x": 1}})
    assert stored == {"distill": {"x": 1}, "distill_scale": results}

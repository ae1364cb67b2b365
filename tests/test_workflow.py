"""The whole workflow, convert -> train -> evaluate -> package, on the CPU with
tiny encoders built here, on the quirky fixtures of every language."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import spacy
from project_utils import copy_project, run_project, write_fixture_assets
from tiny_models import build_tiny_bert, build_tiny_transformer_pipeline, build_tiny_xlmr, fixture_texts

from conll_ner.commands import CPU_TRAINING, GPU_INSTALL
from conll_ner.project import venv_without_project

pytestmark = pytest.mark.slow

QUICK = {"gpu_id": "-1", "max_steps": "8", "n_sents": "2"}
# copies of each fixture in the training files
REPEAT = 4


@pytest.fixture(scope="module")
def tiny_encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    return {
        "bert": build_tiny_bert(root / "tiny-bert", fixture_texts()),
        "xlmr": build_tiny_xlmr(root / "tiny-xlmr", fixture_texts()),
    }


# One run of the whole workflow: the tiny XLM-R (SentencePiece pieces) on
# lang multi, which converts, trains on and scores every language; BERT's
# WordPiece alignment is checked on an initialized pipeline below.
RUNS = [("xlmr", "multi")]
MULTI = RUNS[0]


@pytest.fixture(scope="module")
def workflow_runs(tmp_path_factory, tiny_encoders):
    """`spacy project run all` once per encoder, shared by the tests below."""
    projects = {}
    for encoder, lang in RUNS:
        project = copy_project(tmp_path_factory.mktemp(f"{encoder}-{lang}") / "project")
        write_fixture_assets(project, repeat=REPEAT)
        variables = dict(QUICK, lang=lang, transformer=str(tiny_encoders[encoder]))  # encoder: derived
        os.environ["HF_HUB_OFFLINE"] = "1"  # the hub must never be needed
        try:
            result = run_project(project, "all", variables)
        finally:
            del os.environ["HF_HUB_OFFLINE"]
        projects[encoder, lang] = (project, result)
    return projects


@pytest.mark.parametrize("encoder,lang", RUNS)
def test_workflow_all_end_to_end(workflow_runs, encoder, lang):
    project, result = workflow_runs[encoder, lang]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = f"{lang}-transformer"
    # data: every file from data_dir; convert: every split of every language
    said = " ".join(result.stdout.split())  # wasabi wraps long lines
    assert "conll2002/ned.testb: local file assets/conll2002/ned.testb -> corpus/conll/conll2002/ned.testb" in said
    for split in ("train", "dev", "test"):
        for language, entities in (("en", 6), ("es", 5), ("nl", 2)):
            stats = json.loads((project / "corpus" / split / f"{language}.stats.json").read_text())
            copies = REPEAT if split == "train" else 1
            assert stats["entities_total"] == entities * copies and stats["n_sents"] == int(QUICK["n_sents"])

    nlp = spacy.load(project / "training" / run / "model-best")
    assert nlp.pipe_names == ["transformer", "ner"]
    assert nlp.lang == ("xx" if lang == "multi" else lang)
    # the Spanish fixture has no MISC entity
    assert set(nlp.get_pipe("ner").labels) == {"PER", "ORG", "LOC"} | ({"MISC"} if lang == "multi" else set())
    log_lines = (project / "training" / run / "train_log.jsonl").read_text().splitlines()
    # max_steps 8 caps the 4-epoch plan; 4 evaluations, the last on the last update
    saved = spacy.util.load_config(project / "training" / run / "model-last" / "config.cfg")["training"]
    every = saved["eval_frequency"]
    assert saved["max_steps"] == 4 * every <= 8 and saved["logger"]["patience"] == saved["max_steps"] // 2
    assert saved["patience"] == 0  # the guard's patience, counted after step 0, replaces spaCy's
    # evaluations on the plan's grid, until the last update or until patience ends the run
    steps = [json.loads(line)["step"] for line in log_lines]
    assert len(steps) >= 3 and steps == list(range(0, steps[-1] + 1, every)) and steps[-1] <= saved["max_steps"]

    summary = json.loads((project / "metrics" / run / "metrics.json").read_text())
    languages = ["en", "es", "nl"] if lang == "multi" else [lang]
    assert set(summary) == {f"{split}-{language}" for split in ("dev", "test") for language in languages}
    for name, scores in summary.items():
        assert all(0.0 <= scores[key] <= 1.0 for key in ("ents_p", "ents_r", "ents_f", "ents_token_acc"))
        folder = project / "metrics" / run / name
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["ents_f"] == scores["ents_f"] and metrics["n_tokens"] > 0
        assert "| **overall (micro)** |" in (folder / "metrics.md").read_text()
        rows = [line for line in (folder / "predictions.conll").read_text().splitlines() if line]
        assert len(rows) == metrics["n_tokens"] and all(len(r.split()) == 3 for r in rows)

    wheels = list((project / "packages" / run).glob("*/dist/*.whl"))
    assert len(wheels) == 1
    spacy_lang = "xx" if lang == "multi" else lang
    corpus = {"multi": "conll0203", "es": "conll02"}[lang]
    assert wheels[0].name.startswith(f"{spacy_lang}_ner_{corpus}_tiny_{encoder}-0.1.0")


def test_train_without_gpu_fails_early_and_says_how_to_use_the_cpu(tmp_path, workflow_runs, tiny_encoders):
    project = copy_project(tmp_path / "project")
    shutil.copytree(workflow_runs[MULTI][0] / "corpus", project / "corpus")  # what data and convert made
    result = run_project(project, "train", {"transformer": str(tiny_encoders["bert"]), "gpu_id": "0"})
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())  # wasabi wraps long lines
    # the commands it suggests are the ones tests/test_documented_commands.py checks
    assert "No GPU 0 available" in output and CPU_TRAINING in output and GPU_INSTALL in output
    assert not (project / "training").exists() or not any((project / "training").rglob("model-best"))


def test_spacy_evaluate_reports_the_scorers_numbers(workflow_runs, tmp_path):
    from spacy.training import Corpus

    from conll_ner.evaluation.scoring import score_entities

    project, _ = workflow_runs[MULTI]
    model = project / "training" / "multi-transformer" / "model-best"
    data = project / "corpus" / "dev" / "en.spacy"
    output = tmp_path / "scores.json"
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "evaluate", str(model), str(data), "--output", str(output)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reported = json.loads(output.read_text())
    nlp = spacy.load(model)
    examples = list(Corpus(data)(nlp))
    for example, doc in zip(examples, nlp.pipe(eg.predicted for eg in examples)):
        example.predicted = doc
    expected = score_entities(examples)
    assert reported["ents_f"] == pytest.approx(expected["ents_f"])
    assert reported["ents_p"] == pytest.approx(expected["ents_p"])
    for label, values in expected["ents_per_type"].items():
        assert reported["ents_per_type"][label] == pytest.approx(values)
    assert "ents_errors" in reported and "ents_projection" in reported


def test_packaged_pipeline_installs_and_runs_without_the_project(workflow_runs, tmp_path):
    project, _ = workflow_runs[MULTI]
    wheel = next((project / "packages" / "multi-transformer").glob("*/dist/*.whl"))
    card = next((project / "packages" / "multi-transformer").glob("*/README.md")).read_text()
    summary = json.loads((project / "metrics" / "multi-transformer" / "metrics.json").read_text())
    for name, scores in summary.items():
        assert f"value: {scores['ents_f']}" in card, name
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith("METADATA"))).decode()
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert "spacy-transformers<1.5.0,>=1.4.0" in requires
    assert not any(req.startswith("conll-ner") for req in requires)  # not on PyPI, not needed to load
    venv = venv_without_project(tmp_path / "venv")
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", str(wheel)], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stdout + install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    missing = subprocess.run(
        [str(python), "-c", "import conll_ner"], capture_output=True, text=True, cwd=elsewhere, env=env
    )
    assert missing.returncode != 0  # the venv really lacks the project
    script = (
        "import spacy; nlp = spacy.load('xx_ner_conll0203_tiny_xlmr');"
        "doc = nlp('Peter Blackburn visitó San Sebastián y België.');"
        "print(len(doc), type(doc.ents).__name__, sum(len(d) for d in nlp.pipe(['EU rejects', '', 'De tekst'])));"
        "shim = nlp.get_pipe('transformer').model.layers[0].shims[0];"
        "print(type(shim).__name__, shim.int8_graph is not None)"
    )
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=elsewhere, env=env)
    assert run.returncode == 0, run.stderr
    # the package carries its int8 encoder, and no code that could export one
    assert run.stdout.split() == ["8", "tuple", "4", "CPUTransformerShim", "True"]
    with zipfile.ZipFile(wheel) as archive:
        assert not any(name.endswith("int8.py") for name in archive.namelist())
    evaluate = subprocess.run(
        [
            str(python),
            "-m",
            "spacy",
            "evaluate",
            "xx_ner_conll0203_tiny_xlmr",
            str(project / "corpus" / "dev" / "nl.spacy"),
            "--output",
            str(elsewhere / "m.json"),
        ],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
    )
    assert evaluate.returncode == 0, evaluate.stdout + evaluate.stderr
    assert "ents_projection" in json.loads((elsewhere / "m.json").read_text())


@pytest.mark.parametrize("encoder", ["bert", "xlmr"])
def test_subword_alignment_of_accented_and_long_tokens(tmp_path, encoder):
    nlp = spacy.load(build_tiny_transformer_pipeline(tmp_path, encoder))
    # characters the tiny vocabularies know, so no piece is [UNK]
    words = ["Sebastián", "België", "Sebastiánië", "Verberckmoesabogadosebastiánblackburn", "Blackburn", "."]
    doc = nlp(spacy.tokens.Doc(nlp.vocab, words=words))
    trf = doc._.trf_data
    strings = [s for batch in trf.wordpieces.strings for s in batch]
    for token in doc:
        pieces = [strings[i] for i in trf.align[token.i].data.flatten()]
        assert pieces, token.text
        text = "".join(p.replace("##", "").replace("\u2581", "") for p in pieces)
        # a piece may also cover the space before the next token (XLM-R's ▁)
        assert token.text in text, (token.text, pieces)
    assert len(trf.align[3].data) > 3  # the long word is split into many pieces


def test_long_documents_are_not_truncated(tmp_path):
    # the tiny BERT: the tiny XLM-R's few pieces split every word into letters,
    # so its 128-word windows overflow 512 pieces, which real vocabularies do not
    nlp = spacy.load(build_tiny_transformer_pipeline(tmp_path, "bert"))
    words = ("Peter Blackburn visitó San Sebastián y Verberckmoes woont in België .".split()) * 150
    doc = nlp(spacy.tokens.Doc(nlp.vocab, words=words))
    assert len(doc) == 1650
    pieces = sum(len(batch) for batch in doc._.trf_data.wordpieces.strings)
    assert pieces > 3 * 512  # far longer than one encoder window
    assert all(len(doc._.trf_data.align[i].data) > 0 for i in range(len(doc)))


def test_predictions_conll_agrees_with_metrics_json(workflow_runs):
    """An external scorer (seqeval in conlleval mode) reading predictions.conll
    finds the per-sentence numbers of metrics.json."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    project, _ = workflow_runs[MULTI]
    for folder in sorted((project / "metrics" / "multi-transformer").glob("*-*")):
        gold, pred = [[]], [[]]
        for line in (folder / "predictions.conll").read_text().splitlines():
            if not line:
                if gold[-1]:
                    gold.append([])
                    pred.append([])
                continue
            _, g, p = line.split()
            gold[-1].append(g)
            pred[-1].append(p)
        gold, pred = [s for s in gold if s], [s for s in pred if s]
        scores = json.loads((folder / "metrics.json").read_text())["per_sentence"]
        assert scores["ents_f"] == pytest.approx(f1_score(gold, pred)), folder.name
        assert scores["ents_p"] == pytest.approx(precision_score(gold, pred)), folder.name
        assert scores["ents_r"] == pytest.approx(recall_score(gold, pred)), folder.name


def test_distill_workflow_trains_a_cnn_student_from_the_transformer_teacher(workflow_runs, tmp_path):
    """`spacy project run distill` after `all`: the teacher annotates text, the
    CNN student trains on gold + silver, is evaluated and packaged."""
    from fixtures import SPANISH
    from spacy.tokens import DocBin

    project, _ = workflow_runs[MULTI]
    sentences = [" ".join(line.split()[0] for line in block.splitlines()) for block in SPANISH.strip().split("\n\n")]
    unlabelled = tmp_path / "news.txt"
    unlabelled.write_text("\n".join(sentences * 3) + "\n", encoding="utf8")
    variables = {"gpu_id": "-1", "max_steps": "8", "lang": "multi", "unlabelled": str(unlabelled)}
    result = run_project(project, "distill", variables)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    teacher_path = project / "training" / "multi-transformer" / "model-best"
    teacher = spacy.load(teacher_path)
    # one silver DocBin per input file, beside the teacher's annotation shard
    student_data = project / "corpus" / "distill" / "multi-cnn-distilled"
    assert sorted(p.relative_to(student_data).as_posix() for p in student_data.rglob("*.spacy")) == [
        "gold.spacy",
        "silver/news.spacy",
    ]
    assert (student_data / "teacher_annotations" / "news.jsonl").is_file()
    silver = list(DocBin().from_disk(student_data / "silver" / "news.spacy").get_docs(teacher.vocab))
    assert [doc.text for doc in silver] == sentences * 3
    expected = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in teacher.pipe(sentences * 3)]
    assert [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in silver] == expected

    student = spacy.load(project / "training" / "multi-cnn-distilled" / "model-best")
    assert "transformer" not in student.pipe_names and student.lang == "xx"
    # the student_overrides var narrows the CNN, which configs/cnn.cfg keeps at 256
    assert student.config["components"]["tok2vec"]["model"]["encode"]["width"] == 96
    assert set(student.get_pipe("ner").labels) == set(teacher.get_pipe("ner").labels) == {"PER", "ORG", "LOC", "MISC"}
    comparison = json.loads((project / "metrics" / "multi-cnn-distilled" / "distillation.json").read_text())
    assert comparison["silver"]["docs"] == len(sentences) * 3 and comparison["gold"]["copies"] == 1
    assert comparison["annotate"]["documents_done"] == len(sentences) * 3 and comparison["silver"]["errors"] == 0
    speeds = {role: comparison["dev"][role]["words_per_second"] for role in ("teacher", "student")}
    assert comparison["student_speedup"] == pytest.approx(speeds["student"] / speeds["teacher"])
    card = next((project / "packages" / "multi-cnn-distilled").glob("*/README.md")).read_text()
    assert "## Distillation" in card and "training/multi-transformer/model-best" in card
    assert f"into {len(sentences) * 3} silver documents" in card
    assert f"The student tags {comparison['student_speedup']:.1f}x the teacher's words per second" in card
    assert f"{comparison['dev']['teacher']['dev-es']['ents_f'] * 100:.2f}" in card
    assert list((project / "packages" / "multi-cnn-distilled").glob("*/dist/xx_ner_conll0203_cnn_distilled-0.1.0*.whl"))

    # a teacher whose labels are not the gold data's is refused before annotating
    refused = subprocess.run(
        [
            sys.executable,
            "scripts/distill.py",
            "data",
            str(teacher_path),
            str(tmp_path / "refused"),
            "--lang",
            "nl",
            "--unlabelled",
            str(unlabelled),
        ],
        capture_output=True,
        text=True,
        cwd=project,
    )
    assert refused.returncode == 1
    message = " ".join(refused.stdout.split())  # wasabi wraps long lines
    assert "['LOC', 'MISC', 'ORG', 'PER'] differ from the gold data's ['LOC', 'PER']" in message
    assert not (tmp_path / "refused").exists()


def test_distill_into_a_smaller_transformer_student(workflow_runs, tiny_encoders, tmp_path):
    """The student may be a transformer too: here a tiny BERT learns from the
    tiny XLM-R teacher, on JSONL input."""
    project, _ = workflow_runs[MULTI]
    unlabelled = tmp_path / "news.jsonl"
    unlabelled.write_text(
        "\n".join(json.dumps({"text": t}) for t in ["Melbourne ( Australia ) , 25 may ( EFE ) ."] * 4) + "\n"
    )
    variables = {
        "gpu_id": "-1",
        "max_steps": "4",
        "lang": "multi",
        "unlabelled": str(unlabelled),
        "student_config": "transformer",
        "student_transformer": str(tiny_encoders["bert"]),
        "student_overrides": "",
    }
    result = run_project(project, "distill", variables)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    student = spacy.load(project / "training" / "multi-transformer-distilled" / "model-best")
    assert student.pipe_names == ["transformer", "ner"]
    assert student.config["components"]["transformer"]["model"]["name"] == str(tiny_encoders["bert"])
    comparison = json.loads((project / "metrics" / "multi-transformer-distilled" / "distillation.json").read_text())
    assert comparison["silver"]["docs"] == 4
    assert list(
        (project / "packages" / "multi-transformer-distilled").glob(
            "*/dist/xx_ner_conll0203_tiny_bert_distilled-0.1.0*.whl"
        )
    )

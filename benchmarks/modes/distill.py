"""The `distill` mode: the distill workflow on a labelled/unlabelled split of
eng.train. The teacher trains on L and annotates U with its gold labels
hidden; CNN students train on L, on L + silver U and on L + gold U (the
ceiling). Every step is the workflow's own script with the configs' default
recipes."""

import json
import shlex
import sys
from pathlib import Path
from typing import Any, Dict

import hf_baseline
import srsly
from common import dev_scores, mode_header, ratios_and_targets, remarks, score_cells, train_spacy
from corpora import first_sentences, split_documents, write_docbin, write_texts_jsonl
from processes import PROJECT_DIR, run_checked
from wasabi import msg

from conll_ner.files import write_atomically

RESULTS_FILE = "results.json"
RESULTS_KEY = "distill"

DISTILL_SYSTEMS = (
    ("teacher", "Teacher: all-MiniLM-L6-v2 transformer+ner", "L gold"),
    ("student_gold", "(a) CNN student", "L gold"),
    ("student_distilled", "(b) CNN student, distilled", "L gold + U silver (the teacher's entities)"),
    ("student_ceiling", "(c) CNN student, ceiling", "L gold + U gold"),
)


def run(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """The distill workflow on a labelled/unlabelled split of eng.train: the
    teacher trains on L, annotates U with its gold labels hidden, and CNN
    students train on L, L + silver U and L + gold U. Every step is the
    workflow's own script with the configs' default recipes."""
    sentences = first_sentences(data_dir / "conll2003" / "eng.train", settings["train_sentences"])
    labelled, unlabelled = split_documents(sentences, settings["labelled_share"], settings["split_seed"])
    dev = first_sentences(data_dir / "conll2003" / "eng.testa", settings["dev_sentences"])
    split = {}
    for name, part, target in (
        ("labelled", labelled, work / "corpus" / "train" / "en.spacy"),
        ("unlabelled", unlabelled, work / "unlabelled" / "en.spacy"),
        ("dev", dev, work / "corpus" / "dev" / "en.spacy"),
    ):
        stats = write_docbin(part, "en", target, name)
        split[name] = {
            "documents": sum(1 for s in part if s.doc_start),
            "sentences": len(part),
            "words": stats.tokens,
            "entities": stats.entities_total,
        }
    # the ceiling's training folder: L and U, both gold
    ceiling = work / "ceiling"
    for source, name in (
        (work / "corpus" / "train" / "en.spacy", "labelled.spacy"),
        (work / "unlabelled" / "en.spacy", "unlabelled.spacy"),
    ):
        write_atomically(ceiling / name, source.read_bytes())
    msg.info(
        f"Split: L {split['labelled']['documents']} documents, U {split['unlabelled']['documents']}; "
        "training the teacher on L"
    )
    teacher = {
        "train": train_spacy(
            "transformer", work, "teacher", hf_baseline.default_model_dir(), 0, settings["trf_max_steps"]
        )
    }
    teacher_best = str(work / "teacher" / "model-best")
    # the teacher reads U as text, as a user's unlabelled JSONL: its gold labels and CoNLL tokens stay behind
    unlabelled_texts = write_texts_jsonl(work / "unlabelled" / "en.spacy", work / "unlabelled_text" / "en.jsonl")
    msg.info("The teacher annotates U's texts (scripts/distill.py data)")
    annotate_seconds = run_checked(
        [
            sys.executable,
            "scripts/distill.py",
            "data",
            teacher_best,
            str(work / "distill"),
            "--lang",
            "en",
            "--corpus",
            str(work / "corpus"),
            "--unlabelled",
            str(unlabelled_texts),
        ]
    )
    # the students are what the distill workflow trains with project.yml's
    # default student vars
    project_vars = srsly.read_yaml(PROJECT_DIR / "project.yml")["vars"]
    student_config, overrides = project_vars["student_config"], shlex.split(project_vars["student_overrides"])
    students = {}
    for key, train_path in (
        ("student_gold", None),
        ("student_distilled", work / "distill"),
        ("student_ceiling", ceiling),
    ):
        msg.info(f"Training {key}")
        students[key] = {
            "train": train_spacy(student_config, work, key, "", 0, settings["cnn_max_steps"], train_path, overrides)
        }
    msg.info("Teacher and distilled student side by side (scripts/distill.py compare)")
    comparison_path = work / "distillation.json"
    run_checked(
        [
            sys.executable,
            "scripts/distill.py",
            "compare",
            teacher_best,
            str(work / "student_distilled" / "model-best"),
            str(work / "distill"),
            str(comparison_path),
            "--lang",
            "en",
            "--corpus",
            str(work / "corpus"),
        ]
    )
    comparison = json.loads(comparison_path.read_text())
    systems = {"teacher": teacher, **students}
    for key, system in systems.items():
        system["dev"] = dev_scores(str(work / key / "model-best"), work / "corpus" / "dev" / "en.spacy")
    teacher["words_per_second"] = comparison["dev"]["teacher"]["words_per_second"]
    students["student_distilled"]["words_per_second"] = comparison["dev"]["student"]["words_per_second"]
    a, b, c = (systems[key]["dev"]["f1"] for key in ("student_gold", "student_distilled", "student_ceiling"))
    # the share of the gap means something only where gold U helps at all
    gap_closed = (b - a) / (c - a) if c > a else float("nan")
    speedup = comparison["student_speedup"]
    targets = {
        "(b) dev F1 >= (a) + 1.5": b >= a + 0.015,
        "at least half of the gap closed, (b - a) / (c - a) >= 0.5": gap_closed >= 0.5,
        "student CPU words/s >= 5x the teacher's": speedup >= 5,
    }
    return {
        "split": split,
        "silver": comparison["silver"],
        "annotate_seconds": annotate_seconds,
        "student_vars": {"student_config": student_config, "student_overrides": project_vars["student_overrides"]},
        **systems,
        "ratios": {"gap closed, (b - a) / (c - a)": gap_closed, "CPU words/s, student / teacher": speedup},
        "targets": {key: bool(met) for key, met in targets.items()},
    }


def report_markdown(results: Dict[str, Any]) -> str:
    split, silver = results["split"], results["silver"]
    # runs from before the student_overrides var trained configs/cnn.cfg as it is
    student = results.get("student_vars", {"student_config": "cnn", "student_overrides": ""})
    lines = [
        *mode_header("## Distillation (`distill` mode)", results),
        f"eng.train split by documents (seed {results['settings']['split_seed']}): L = "
        f"{split['labelled']['documents']} documents ({split['labelled']['words']:,} words), U = the other "
        f"{split['unlabelled']['documents']} ({split['unlabelled']['words']:,} words), its gold labels hidden. "
        "The teacher (configs/transformer.cfg with all-MiniLM-L6-v2, default recipe) trains on L; "
        f"`scripts/distill.py data` has it annotate U ({silver['docs']:,} documents, {silver['entities_total']:,} "
        f"entities{', ' + format(results['annotate_seconds'], '.0f') + ' s with loading' if results.get('annotate_seconds') else ''}). The students are "
        f"configs/{student['student_config']}.cfg with project.yml's default `student_overrides` "
        f"(`{student['student_overrides'] or 'none'}`) and the config's default recipe (10 epochs of their training "
        "data). All steps are the distill workflow's scripts; dev scores "
        "are seqeval's on the dev set, of model-best; CPU words/s from `scripts/distill.py compare` (pre-tokenized "
        "dev words, each pipeline's own batch size, one process).",
        "",
        "| System | Trained on | Dev P | Dev R | Dev F1 | Train s | CPU words/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for key, name, data in DISTILL_SYSTEMS:
        r = results[key]
        speed = f"{r['words_per_second']:,.0f}" if "words_per_second" in r else ""
        lines.append(f"| {name} | {data} | {score_cells(r['dev'])} | {r['train']['train_seconds']:.0f} | {speed} |")
    return "\n".join(lines + remarks(results) + ratios_and_targets(results)) + "\n"

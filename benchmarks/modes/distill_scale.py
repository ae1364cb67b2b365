"""Distillation at corpus scale (the `distill_scale` mode):
the distill-data step, run as project.yml runs it, on a million short
unlabelled documents, and the student's speed against a base-size teacher.

(a) The input: the sentences of the CoNLL training files of all three
languages (eng.train, esp.train, ned.train), each joined as one short text,
repeated and shuffled with a seed into `documents` documents in `shards`
JSONL files; nothing is fetched. (b) The teacher: configs/cnn.cfg trained on
eng.train for `teacher_max_steps` updates by the project's train script.
The data step's memory and resume behaviour depend on the teacher only
through its own size (the engine streams documents, the silver files are
built shard by shard), and a transformer teacher would need hours for a
million documents on 2 CPU cores, so a CNN teacher makes the scale
affordable. (c) Peak RSS of the whole process tree of `spacy project run
distill-data` (weasel, the step's script and its worker processes, summed,
sampled every `rss_interval_seconds`) on the first `sample_documents`
documents and on all of them. (d) A second run on all documents, killed with
SIGKILL (its whole process group) once `kill_at_share` of the annotation
shards are recorded done, then rerun with the same command: what the rerun
skipped and annotated, and its silver corpus against the uninterrupted
run's. (e) The student (configs/cnn.cfg with project.yml's
student_overrides) against a base-size teacher (configs/transformer.cfg
with a random-weights BERT of `base_teacher`'s dimensions, mBERT's in the
full mode, and all-MiniLM-L6-v2's WordPiece tokenizer), both untrained
(random weights give the real speed), timed on the same dev sentences in
one process with the project's timing helper.
"""

import json
import math
import os
import random
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import hf_baseline
import numpy
import spacy
import srsly
import typer
from common import mode_header, ratios_and_targets, remarks, train_spacy
from corpora import first_sentences, write_docbin
from process_tree import measure_tree
from processes import PROJECT_DIR, measure_in_subprocess, run_checked
from spacy.cli._util import parse_config_overrides
from spacy.tokens import DocBin
from spacy.training.initialize import init_nlp
from spacy.util import load_config
from wasabi import msg

from conll_ner.data.conll import read_conll_file
from conll_ner.evaluation.metrics import words_per_second
from conll_ner.files import write_atomically
from conll_ner.inference.manifest import DONE_FILE, read_done
from conll_ner.inference.settings import Settings
from conll_ner.packaging.int8 import int8_tools_missing
from conll_ner.pipeline.prediction_runtime import prediction_runtime
from conll_ner.project import copy_project, project_run_args
from conll_ner.training.distillation import ANNOTATIONS_DIR, SILVER_DIR, SUMMARY_FILE

RESULTS_FILE = "results.json"
RESULTS_KEY = "distill_scale"

SOURCES = ("conll2003/eng.train", "conll2002/esp.train", "conll2002/ned.train")
# what the student and the base-size teacher are initialized on: labels and shapes, no training
INIT_SENTENCES = 200
app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


def write_unlabelled(data_dir: Path, folder: Path, documents: int, shards: int, seed: int) -> Dict[str, Any]:
    """The mode's input: every sentence of the three training files as one
    text, repeated and shuffled (the same for a seed) into `documents`
    documents, `documents / shards` per JSONL file."""
    texts = [" ".join(s.words) for name in SOURCES for s in read_conll_file(data_dir / name).sentences]
    words = [text.count(" ") + 1 for text in texts]
    order = [index % len(texts) for index in range(documents)]
    random.Random(seed).shuffle(order)
    per_shard = math.ceil(documents / shards)
    shutil.rmtree(folder, ignore_errors=True)
    for shard in range(shards):
        lines = (
            json.dumps({"text": texts[i]}, ensure_ascii=False) + "\n" for i in order[shard * per_shard :][:per_shard]
        )
        write_atomically(folder / f"part-{shard:03d}.jsonl", "".join(lines).encode("utf8"))
    return {
        "documents": documents,
        "shards": shards,
        "documents_per_shard": per_shard,
        "sentences": len(texts),
        "sources": list(SOURCES),
        "words": sum(words[i] for i in order),
    }


def first_shards(folder: Path, target: Path, count: int) -> Path:
    """A folder of hard links to the first `count` shard files: the sample
    run's input, without copying it."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in sorted(folder.glob("*.jsonl"))[:count]:
        os.link(path, target / path.name)
    return target


def project_copy(work: Path, gold: Path) -> Path:
    """A fresh copy of the project with a gold training corpus, for the
    distill-data step to run in as a user runs it."""
    project = work / "project"
    shutil.rmtree(project, ignore_errors=True)
    copy_project(PROJECT_DIR, project)
    (project / "corpus" / "train").mkdir(parents=True)
    shutil.copyfile(gold, project / "corpus" / "train" / "en.spacy")
    return project


def distill_data_vars(teacher: Path, unlabelled: Path, student_run: str, workers: int) -> Dict[str, str]:
    return {
        "lang": "en",
        "teacher": str(teacher),
        "unlabelled": str(unlabelled),
        "student_run": student_run,
        "workers": str(workers),
    }


def documented_command(variables: Dict[str, str]) -> str:
    """The command line a user types for the same run."""
    return "spacy project run distill-data . " + " ".join(f"--vars.{k} {shlex.quote(v)}" for k, v in variables.items())


def partial_rows(annotations: Path) -> int:
    """Rows in the temporary files of shards in flight (left by a kill)."""
    return sum(path.read_bytes().count(b"\n") for path in annotations.rglob(".*.tmp"))


def same_silver(a: Path, b: Path) -> Dict[str, Any]:
    """Whether two silver folders hold the same files with the same Docs:
    each DocBin's token attributes (words, spaces, entity tags and types, as
    hashes), whitespace and strings, compared without building Docs."""
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*.spacy"))
    equal = names == sorted(p.relative_to(b).as_posix() for p in b.rglob("*.spacy"))
    docs = 0
    for name in names if equal else []:
        one, other = DocBin().from_disk(a / name), DocBin().from_disk(b / name)
        equal = (
            len(one) == len(other)
            and all(numpy.array_equal(x, y) for x, y in zip(one.tokens, other.tokens))
            and all(numpy.array_equal(x, y) for x, y in zip(one.spaces, other.spaces))
            and one.strings == other.strings
        )
        docs += len(one)
        if not equal:
            break
    return {"equal": equal, "files": len(names), "docs": docs}


def step_summary(student: Path) -> Dict[str, Any]:
    """What distill-data wrote to distillation.json: the annotate counts and the silver counts."""
    summary = json.loads((student / SUMMARY_FILE).read_text())
    return {"annotate": summary["annotate"], "silver": summary["silver"]}


def init_corpus(data_dir: Path, work: Path) -> Path:
    path = work / "init" / "train.spacy"
    write_docbin(first_sentences(data_dir / "conll2003" / "eng.train", INIT_SENTENCES), "en", path, "eng.train")
    return path


def initialized_pipeline(config: Path, corpus: Path, target: Path, overrides: Dict[str, Any]) -> Path:
    """An untrained pipeline of a config, initialized on `corpus` (its labels)."""
    paths = {"paths.train": str(corpus), "paths.dev": str(corpus), "paths.train_log": str(target.parent / "log.jsonl")}
    target.parent.mkdir(parents=True, exist_ok=True)
    init_nlp(load_config(config, overrides={**paths, **overrides})).to_disk(target)
    return target


def build_base_encoder(path: Path, dimensions: Dict[str, int], seed: int) -> Path:
    """A BERT of the given dimensions with random weights, saved as a Hugging
    Face folder with all-MiniLM-L6-v2's WordPiece tokenizer (the only one
    this project can load offline; a vocabulary smaller than the encoder's
    only leaves embedding rows unused)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    shutil.rmtree(path, ignore_errors=True)
    BertModel(BertConfig(max_position_embeddings=512, **dimensions)).save_pretrained(path)
    tokenizer = Path(hf_baseline.default_model_dir())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(tokenizer / name, path / name)
    return path


def int8_build_note(speed: Dict[str, Any]) -> str:
    """Whether the teacher's int8 encoder was built and, if not, why (runs
    before int8 ran on every CPU recorded no reason: their CPU lacked VNNI)."""
    if speed["int8_built"]:
        return "built"
    return f"not built ({speed.get('int8_missing') or 'this CPU had no VNNI or AMX, which int8 then needed'})"


def build_speed_pipelines(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """The untrained base-size teacher and the CNN student, and whether the
    teacher got its int8 encoder: built (scripts/int8.py, as the package step
    does) wherever the ONNX tools are installed, which every x86 CPU runs."""
    corpus = init_corpus(data_dir, work)
    encoder = build_base_encoder(work / "base_encoder", settings["base_teacher"], settings["seed"])
    os.environ["HF_HUB_OFFLINE"] = "1"
    teacher = initialized_pipeline(
        PROJECT_DIR / "configs" / "transformer.cfg",
        corpus,
        work / "base_teacher" / "pipeline",
        {"components.transformer.model.name": str(encoder)},
    )
    int8_missing = int8_tools_missing()
    if not int8_missing:
        run_checked([sys.executable, "scripts/int8.py", str(teacher)])
    student_overrides = srsly.read_yaml(PROJECT_DIR / "project.yml")["vars"]["student_overrides"]
    student = initialized_pipeline(
        PROJECT_DIR / "configs" / "cnn.cfg",
        corpus,
        work / "student" / "pipeline",
        parse_config_overrides(shlex.split(student_overrides)),
    )
    return {
        "base_teacher": str(teacher),
        "student": str(student),
        "int8_built": not int8_missing,
        "int8_missing": int8_missing,
        "student_overrides": student_overrides,
    }


def run(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """Every part of the mode."""
    for name in SOURCES:
        if not (data_dir / name).is_file():
            msg.fail(f"{data_dir / name} is missing: the mode builds its input from all three training files", exits=1)
    interval = settings["rss_interval_seconds"]
    msg.info(f"Writing {settings['documents']:,} unlabelled documents in {settings['shards']} shards")
    unlabelled = write_unlabelled(
        data_dir, work / "inputs" / "all", settings["documents"], settings["shards"], settings["seed"]
    )
    sample_shards = math.ceil(settings["sample_documents"] / unlabelled["documents_per_shard"])
    sample = first_shards(work / "inputs" / "all", work / "inputs" / "sample", sample_shards)
    gold = work / "corpus" / "train" / "en.spacy"
    write_docbin(first_sentences(data_dir / "conll2003" / "eng.train", 0), "en", gold, "eng.train")
    dev = first_sentences(data_dir / "conll2003" / "eng.testa", settings["teacher_dev_sentences"])
    write_docbin(dev, "en", work / "corpus" / "dev" / "en.spacy", "eng.testa")
    msg.info(f"Training the CNN teacher on eng.train ({settings['teacher_max_steps']} updates)")
    trained = train_spacy("cnn", work, "teacher", "", 0, settings["teacher_max_steps"])
    teacher = work / "teacher" / "model-best"
    project = project_copy(work, gold)
    runs: Dict[str, Dict[str, Any]] = {}

    def distill_data(
        name: str, student_run: str, inputs: Path, kill_file: Optional[Path] = None, kill_lines: int = 0
    ) -> Dict[str, Any]:
        variables = distill_data_vars(teacher, inputs, student_run, settings["workers"])
        args = project_run_args(project, "distill-data", variables)
        msg.info(f"distill-data, {name}: {documented_command(variables)}")
        measured = measure_tree(args, project, work / "logs" / f"{name}.log", interval, None, kill_file, kill_lines)
        runs[name] = {"command": documented_command(variables), **measured}
        return measured

    students = project / "corpus" / "distill"
    batch_size = int(srsly.read_yaml(project / "project.yml")["vars"]["annotate_batch_size"])
    distill_data("sample", "scale-sample", sample)
    runs["sample"].update(
        documents=sample_shards * unlabelled["documents_per_shard"], **step_summary(students / "scale-sample")
    )
    distill_data("all", "scale-all", work / "inputs" / "all")
    runs["all"].update(documents=unlabelled["documents"], **step_summary(students / "scale-all"))
    # the kill-and-rerun check runs on the sample or on all documents (the
    # mode's resume_input), and is compared with that input's uninterrupted run
    resume_inputs = {
        "sample": (sample, sample_shards, runs["sample"]["documents"], "scale-sample"),
        "all": (work / "inputs" / "all", settings["shards"], unlabelled["documents"], "scale-all"),
    }
    resume_input, resume_shards, resume_documents, uninterrupted = resume_inputs[settings["resume_input"]]
    annotations = students / "scale-resumed" / ANNOTATIONS_DIR
    kill_at = math.ceil(resume_shards * settings["kill_at_share"])
    # killed once the engine's log of finished shards has kill_at lines
    distill_data("resumed_killed", "scale-resumed", resume_input, annotations / DONE_FILE, kill_at)
    recorded = read_done(annotations / DONE_FILE)
    at_kill = {
        "shards_recorded": len(recorded),
        "documents_recorded": sum(record.documents for record in recorded.values()),
        "rows_of_shards_in_flight": partial_rows(annotations),
        "silver_files": len(list((students / "scale-resumed" / SILVER_DIR).rglob("*.spacy"))),
    }
    runs["resumed_killed"].update(documents=resume_documents, at_kill=at_kill)
    distill_data("resumed_rerun", "scale-resumed", resume_input)
    runs["resumed_rerun"].update(documents=resume_documents, **step_summary(students / "scale-resumed"))
    rerun = runs["resumed_rerun"]["annotate"]
    silver = same_silver(students / "scale-resumed" / SILVER_DIR, students / uninterrupted / SILVER_DIR)
    resume = {
        "input": settings["resume_input"],
        "shards": resume_shards,
        "documents": resume_documents,
        "kill_at_shards": kill_at,
        **at_kill,
        "rerun_shards_skipped": rerun["shards_skipped"],
        "rerun_shards_done": rerun["shards_done"],
        "rerun_documents_skipped": rerun["documents_skipped"],
        "rerun_documents_done": rerun["documents_done"] + rerun["documents_failed"],
        # documents in the engine's chunks in flight at the kill, beyond the
        # rows written: the local engine holds at most 2 * workers + 1
        "in_flight_bound": (2 * settings["workers"] + 1) * Settings(batch_size=batch_size).chunk_docs,
        "silver": silver,
    }
    msg.info("Building the base-size teacher and the student for the speed comparison")
    pipelines = build_speed_pipelines(data_dir, work, settings)
    speed = measure_in_subprocess(
        speed_args(
            pipelines, data_dir / "conll2003" / "eng.testa", settings["speed_dev_sentences"], settings["threads"]
        ),
        work / "speed.json",
    )
    speed.update(
        int8_built=pipelines["int8_built"],
        int8_missing=pipelines["int8_missing"],
        student_overrides=pipelines["student_overrides"],
    )
    rss_growth = runs["all"]["peak_tree_rss_mb"] / runs["sample"]["peak_tree_rss_mb"]
    speedup = speed["student"]["words_per_second"] / speed["base_teacher"]["words_per_second"]
    nothing_twice = (
        resume["rerun_shards_skipped"] == resume["shards_recorded"]
        and resume["rerun_documents_skipped"] + resume["rerun_documents_done"] == resume_documents
    )
    targets = {
        "distill-data peak RSS (process tree) at all documents within 10% of the sample's": rss_growth <= 1.10,
        "the killed run's rerun skipped every shard recorded before the kill and annotated each document once": nothing_twice,
        "the silver corpus after kill and rerun equals the uninterrupted run's": silver["equal"],
        "student CPU words/s >= 10x the base-size teacher's": speedup >= 10,
    }
    return {
        "input": unlabelled,
        "teacher": {"train": trained, "dev_f1": max(point["f1"] for point in trained["curve"])},
        "runs": runs,
        "resume": resume,
        "speed": speed,
        "ratios": {
            "peak RSS (process tree), all documents / sample": rss_growth,
            "CPU words/s, student / base-size teacher": speedup,
        },
        "targets": {key: bool(met) for key, met in targets.items()},
    }


@app.callback()
def commands() -> None:
    """The mode's measurements that run in processes of their own."""


def speed_args(pipelines: Dict[str, Any], dev: Path, sentences: int, threads: int) -> List[str]:
    """The measure-speed command on the speed pipelines (this script and its
    arguments, to run in a process of its own)."""
    return [
        str(Path(__file__).resolve()),
        "measure-speed",
        "--teacher",
        pipelines["base_teacher"],
        "--student",
        pipelines["student"],
        "--dev",
        str(dev),
        "--sentences",
        str(sentences),
        "--threads",
        str(threads),
    ]


@app.command("measure-speed")
def measure_speed_command(
    teacher: Path = typer.Option(..., "--teacher", help="The base-size teacher pipeline"),
    student: Path = typer.Option(..., "--student", help="The student pipeline"),
    dev: Path = typer.Option(..., "--dev", exists=True, dir_okay=False, help="CoNLL file whose sentences are tagged"),
    sentences: int = typer.Option(0, "--sentences", help="Its first N sentences; 0: all"),
    threads: int = typer.Option(0, "--threads", help="torch threads; 0: all cores"),
    output_json: Path = typer.Option(..., "--output-json"),
) -> None:
    """Words per second of both pipelines on the same pre-tokenized sentences,
    one after the other in this process (conll_ner.evaluation.metrics:
    words_per_second, the median of three passes), with the precision each
    predicted in."""
    torch_threads = hf_baseline.set_threads(threads)
    words = [sentence.words for sentence in first_sentences(dev, sentences)]
    result: Dict[str, Any] = {"sentences": len(words), "words": sum(map(len, words)), "torch_threads": torch_threads}
    for role, path in (("base_teacher", teacher), ("student", student)):
        nlp = spacy.load(path)
        result[role] = {
            "words_per_second": words_per_second(nlp, words),
            "batch_size": nlp.batch_size,
            "runtime": prediction_runtime(nlp),
        }
        del nlp
    hf_baseline.write_json(output_json, result)


RUN_NAMES = {
    "sample": "The sample (first shards)",
    "all": "All documents",
    "resumed_killed": "Killed",
    "resumed_rerun": "The same command again",
}


def run_row(name: str, run: Dict[str, Any]) -> str:
    annotate = run.get("annotate")
    if annotate is None:  # the killed run wrote no summary
        at_kill = run["at_kill"]
        done = f"{at_kill['shards_recorded']} recorded | |"
        rate = ""
    else:
        done = f"{annotate['shards_done']} | {annotate['shards_skipped']} |"
        rate = f"{(annotate['documents_done'] + annotate['documents_failed']) / run['seconds']:,.0f}"
    return (
        f"| {RUN_NAMES[name]} | {run['documents']:,} | {done} {run['seconds']:,.0f} | {rate} | "
        f"{run['peak_tree_rss_mb']:,.0f} | {run['largest_process_peak_rss_mb']:,.0f} |"
    )


def minilm_reference(distill: Optional[Dict[str, Any]]) -> List[str]:
    """The distill mode's MiniLM teacher and its student, as that run measured them."""
    if not distill:
        return []
    teacher, student = distill["teacher"], distill["student_distilled"]
    return [
        "",
        f"For reference, the `distill` mode's trained teachers (all-MiniLM-L6-v2, its run of {distill['date'][:10]}, "
        f"`scripts/distill.py compare`): teacher {teacher['words_per_second']:,.0f} words/s, its distilled student "
        f"{student['words_per_second']:,.0f}, {distill['ratios']['CPU words/s, student / teacher']:.2f}x.",
    ]


def report_markdown(results: Dict[str, Any], distill: Optional[Dict[str, Any]]) -> str:
    """The mode's section of BENCHMARKS.md; `distill` is the distill mode's
    stored results, whose MiniLM ratio is quoted beside this run's."""
    settings, data, runs, resume, speed = (
        results["settings"],
        results["input"],
        results["runs"],
        results["resume"],
        results["speed"],
    )
    teacher = results["teacher"]["train"]
    dims = settings["base_teacher"]
    silver = resume["silver"]
    lines = [
        *mode_header("## Distillation at corpus scale (`distill_scale` mode)", results),
        f"Input: {data['documents']:,} unlabelled documents ({data['words']:,} words): the {data['sentences']:,} "
        f"sentences of {', '.join(Path(s).name for s in data['sources'])}, each joined as one text, repeated and "
        f"shuffled (seed {settings['seed']}) into {data['shards']} JSONL files of {data['documents_per_shard']:,}; "
        f"the sample is the first {runs['sample']['documents']:,} documents. Teacher: configs/cnn.cfg trained on "
        f"eng.train for {teacher['steps']:,} updates ({teacher['train_seconds']:.0f} s; dev F1 "
        f"{results['teacher']['dev_f1'] * 100:.2f} on the first {settings['teacher_dev_sentences']:,} dev "
        "sentences). A CNN teacher, because the data step's memory and resume behaviour depend on the teacher "
        "only through its own size, and a transformer teacher would need hours for a million documents on this "
        "CPU. Each run is project.yml's distill-data step as a subprocess, e.g. "
        f"`{runs['all']['command']}`. Peak RSS: the whole process tree (weasel, the step, its "
        f"{settings['workers']} worker processes), summed (pages they share count in each), sampled every "
        f"{settings['rss_interval_seconds']} s by benchmarks/process_tree.py; the largest process: the kernel's peak "
        "of the biggest one (ru_maxrss).",
        "",
        "| Run | Documents | Shards annotated | Shards skipped | Seconds | Documents/s | Peak RSS, tree MB | Largest process MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *(run_row(name, runs[name]) for name in RUN_NAMES),
        "",
        f"The kill-and-rerun check ran on {'the sample' if resume['input'] == 'sample' else 'all documents'} "
        f"({resume['documents']:,} documents in {resume['shards']} shards; the mode's resume_input). Killed with "
        f"SIGKILL (the process group) once {resume['kill_at_shards']} of {resume['shards']} annotation "
        f"shards were recorded done: {resume['shards_recorded']} shards ({resume['documents_recorded']:,} "
        f"documents) were recorded, {resume['silver_files']} silver files written, and the shard in flight had "
        f"{resume['rows_of_shards_in_flight']:,} rows in its temporary file. The same command again skipped "
        f"{resume['rerun_shards_skipped']} shards ({resume['rerun_documents_skipped']:,} documents) and annotated "
        f"{resume['rerun_shards_done']} ({resume['rerun_documents_done']:,} documents): annotated twice were only "
        f"the documents of the shard in flight ({resume['rows_of_shards_in_flight']:,} written, and at most "
        f"{resume['in_flight_bound']:,} more in the workers' chunks). Its silver corpus "
        f"{'equals' if silver['equal'] else 'differs from'} the uninterrupted run's on the same input ({silver['files']} DocBins, "
        f"{silver['docs']:,} Docs compared: words, whitespace and entities).",
        "",
        f"CPU speed on the first {speed['sentences']:,} dev sentences ({speed['words']:,} words, pre-tokenized, "
        f"{speed['torch_threads']} torch threads, one process, median of three passes), untrained pipelines: "
        f"random weights give the real speed. The base-size teacher is configs/transformer.cfg with a random BERT of "
        f"{dims['num_hidden_layers']} layers, hidden size {dims['hidden_size']}, {dims['num_attention_heads']} heads, "
        f"intermediate size {dims['intermediate_size']} and {dims['vocab_size']:,} vocabulary rows (all-MiniLM-L6-v2's "
        f"WordPiece tokenizer); its int8 encoder was {int8_build_note(speed)}. "
        f"The student is configs/cnn.cfg with `{speed['student_overrides']}`.",
        "",
        "| Pipeline | Device, precision | CPU words/s |",
        "|---|---|---:|",
    ]
    for role, name in (("base_teacher", "Base-size teacher (BERT dimensions above)"), ("student", "CNN student")):
        runtime = speed[role]["runtime"]
        lines.append(
            f"| {name} | {runtime['device']}, {runtime['precision']} | {speed[role]['words_per_second']:,.0f} |"
        )
    lines += minilm_reference(distill)
    return "\n".join(lines + remarks(results) + ratios_and_targets(results)) + "\n"


if __name__ == "__main__":
    app()

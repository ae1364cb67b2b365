"""The `annotate` mode: words/s of the CNN and MiniLM pipelines that the
distill mode trained, through the local engine and through Ray on the same
cores, and peak memory on a corpus holding one very long text. Each run is
`conll_ner.inference.annotate.annotate` (what `spacy project run annotate`
runs) in a process of its own (this module's `measure` command), so that its
peak memory is its own."""

import json
from pathlib import Path
from typing import Any, Dict, List

import hf_baseline
import typer
from common import mode_header, ratio, ratios_and_targets, remarks
from processes import WORK_DIR, measure_in_subprocess
from wasabi import msg

from conll_ner.data.conll import iter_documents, read_conll_file
from conll_ner.files import write_atomically
from conll_ner.inference.annotate import annotate

RESULTS_FILE = "results.json"
RESULTS_KEY = "annotate"
app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])

ANNOTATE_PIPELINES = (("cnn", "CNN+ner"), ("transformer", "all-MiniLM-L6-v2 transformer+ner"))


def write_annotate_corpus(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """JSONL shards of CoNLL documents as plain text (sentences on lines of
    their own), and one shard holding a single text of `long_text_chars`
    characters, built from eng.train's documents one after the other."""
    source = "eng.train"
    documents = [
        "\n".join(" ".join(s.words) for s in document)
        for document in iter_documents(read_conll_file(data_dir / "conll2003" / source).sentences)
    ]
    corpora: Dict[str, Any] = {}
    for name, copies in (("cnn", settings["cnn_corpus_copies"]), ("transformer", settings["trf_corpus_copies"])):
        folder = work / "inputs" / name
        lines: List[List[str]] = [[] for _ in range(settings["shards"])]
        for number, text in enumerate(documents * copies):
            lines[number % settings["shards"]].append(json.dumps({"id": f"{source}-{number}", "text": text}))
        for shard, shard_lines in enumerate(lines):
            write_atomically(folder / f"part-{shard}.jsonl", ("\n".join(shard_lines) + "\n").encode("utf8"))
        corpora[name] = {"path": str(folder), "documents": len(documents) * copies, "source": source, "copies": copies}
    text = ""
    for document in documents:
        if len(text) >= settings["long_text_chars"]:
            break
        text += document + "\n\n"
    text = text[: text.rfind(" ", 0, settings["long_text_chars"])]
    write_atomically(
        work / "inputs" / "long" / "long.jsonl", (json.dumps({"id": "long", "text": text}) + "\n").encode("utf8")
    )
    corpora["long"] = {"path": str(work / "inputs" / "long"), "chars": len(text)}
    return corpora


def measure_annotation(
    model: str, inputs: str, output: Path, engine: str, workers: int, max_chars: int
) -> Dict[str, Any]:
    """One run of scripts/annotate.py's function in a process of its own, so
    that its peak memory is its own."""
    args = [
        str(Path(__file__).resolve()),
        "measure",
        "--model",
        model,
        "--inputs",
        inputs,
        "--output",
        str(output),
        "--engine",
        engine,
        "--workers",
        str(workers),
        "--max-chars",
        str(max_chars),
    ]
    return measure_in_subprocess(args, output.with_suffix(".summary.json"))


def run(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """Words/s of the CNN and MiniLM pipelines through the local engine and
    through Ray on the same cores, and peak memory on a corpus holding one
    very long text, cut into pieces (the default) and, for the CNN, whole."""
    models = {name: WORK_DIR / path for name, path in settings["pipelines"].items()}
    for path in models.values():
        if not (path / "meta.json").is_file():
            msg.fail(
                f"{path} is missing: the annotate mode times the pipelines the distill mode trained "
                "(spacy project run benchmark benchmarks --vars.mode distill)",
                exits=1,
            )
    corpora = write_annotate_corpus(data_dir, work, settings)
    speed, memory = [], []
    for name, _ in ANNOTATE_PIPELINES:
        for engine in ("local", "ray"):
            msg.info(f"{name}, {engine} engine, {settings['workers']} workers")
            summary = measure_annotation(
                str(models[name]),
                corpora[name]["path"],
                work / "out" / f"{name}-{engine}",
                engine,
                settings["workers"],
                settings["max_chars"],
            )
            speed.append({"pipeline": name, "engine": engine, "workers": settings["workers"], **summary})
        for max_chars in [settings["max_chars"], 1_000_000] if name == "cnn" else [settings["max_chars"]]:
            msg.info(f"{name}, one {corpora['long']['chars']:,}-character text, max_chars {max_chars:,}")
            summary = measure_annotation(
                str(models[name]),
                corpora["long"]["path"],
                work / "out" / f"{name}-long-{max_chars}",
                "local",
                1,
                max_chars,
            )
            memory.append({"pipeline": name, "max_chars": max_chars, **summary})
    by_run = {(row["pipeline"], row["engine"]): row["words_per_second"] for row in speed}
    ratios = {
        f"words/s {name}, ray / local": ratio(by_run[name, "ray"], by_run[name, "local"])
        for name, _ in ANNOTATE_PIPELINES
    }
    targets = {"CNN through Ray within 15% of the local engine's words/s": ratios["words/s cnn, ray / local"] >= 0.85}
    return {
        "corpora": corpora,
        "speed": speed,
        "memory": memory,
        "ratios": ratios,
        "targets": {key: bool(met) for key, met in targets.items()},
    }


def report_markdown(results: Dict[str, Any]) -> str:
    names = dict(ANNOTATE_PIPELINES)
    corpora = results["corpora"]
    lines = [
        *mode_header("## Annotating large corpora (`annotate` mode)", results),
        "`conll_ner.inference.annotate.annotate` (what `spacy project run annotate` runs) over JSONL shards of "
        f"CoNLL-2003 documents as plain text: the CNN over {corpora['cnn']['copies']} copies of "
        f"{corpora['cnn']['source']} ({corpora['cnn']['documents']:,} documents), the transformer over "
        f"{corpora['transformer']['copies']} of {corpora['transformer']['source']} "
        f"({corpora['transformer']['documents']:,} documents), "
        f"{results['settings']['shards']} shards each. Both engines run the same number of workers on the same "
        "cores (local: spawned processes; Ray: actors of a local Ray instance). Seconds are end to end: model "
        "loading and Ray's start-up included. First output: the seconds until the first document came back (Ray "
        "returns rows a block of input at a time, the local engine a chunk of 128 documents). Peak RSS: the annotating process's own peak (VmHWM), model "
        "included, with the local engine in one process.",
        "",
        "| Pipeline | Engine | Workers | Documents | Words | Seconds | Words/s | First output s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["speed"]:
        lines.append(
            f"| {names[row['pipeline']]} | {row['engine']} | {row['workers']} | {row['documents_done']:,} | "
            f"{row['words']:,} | {row['seconds']:.1f} | {row['words_per_second']:,.0f} | "
            f"{row['first_output_seconds']:.1f} |"
        )
    lines += [
        "",
        f"One text of {corpora['long']['chars']:,} characters:",
        "",
        "| Pipeline | max_chars | Seconds | Peak RSS MB |",
        "|---|---:|---:|---:|",
    ]
    for row in results["memory"]:
        lines.append(
            f"| {names[row['pipeline']]} | {row['max_chars']:,} | {row['seconds']:.1f} | {row['peak_rss_mb']:,.0f} |"
        )
    return "\n".join(lines + remarks(results) + ratios_and_targets(results)) + "\n"


@app.command("measure")
def annotate_measure_command(
    model: str = typer.Option(..., "--model"),
    inputs: str = typer.Option(..., "--inputs"),
    output: Path = typer.Option(..., "--output"),
    engine: str = typer.Option(..., "--engine"),
    workers: int = typer.Option(..., "--workers"),
    max_chars: int = typer.Option(..., "--max-chars"),
    output_json: Path = typer.Option(..., "--output-json"),
) -> None:
    """One annotation run, its summary and this process's peak memory."""
    summary = annotate(
        model, inputs, output, engine=engine, workers=workers, max_chars=max_chars, resume=False, show_progress=False
    )
    hf_baseline.write_json(output_json, {**summary, "peak_rss_mb": hf_baseline.peak_rss_mb()})


if __name__ == "__main__":
    app()

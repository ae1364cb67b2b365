"""Package a trained pipeline as an installable Python package with its model
card, its int8 encoder (transformer pipelines, where onnxruntime is
installed) and the project code it needs at load time (the scorer and
conll_ner/pipeline/)."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional

import spacy
import typer
from spacy.cli.package import package as spacy_package
from spacy.util import load_config
from wasabi import msg

from conll_ner.evaluation.metrics import evaluate_docbin, score_summary
from conll_ner.packaging.int8 import int8_tools_missing, write_int8_pipeline
from conll_ner.packaging.model_card import write_model_card
from conll_ner.packaging.pipeline_code import add_pipeline_modules, standalone_code_paths
from conll_ner.pipeline.prediction_runtime import prediction_runtime
from conll_ner.runs import CORPUS_NAMES, HUB_DATASETS, evaluation_paths, languages, spacy_lang
from conll_ner.training.encoders import encoder_name, pipeline_transformer

PROJECT_DISTRIBUTION = "conll-ner"


def drop_project_requirement(meta_path: Path) -> None:
    """spaCy requires the distribution of every registered function in the
    config, which adds this project (`conll-ner`, not on PyPI) for the training
    logger, reader and schedule. Loading needs only the scorer and the
    modules of conll_ner/pipeline/, which travel
    in the package as code, so the requirement would only make installs fail."""
    meta = json.loads(meta_path.read_text(encoding="utf8"))
    meta["requirements"] = [req for req in meta["requirements"] if not req.startswith(PROJECT_DISTRIBUTION)]
    meta_path.write_text(json.dumps(meta, indent=2), encoding="utf8")


def copy_pipeline(model_dir: Path, pipeline_dir: Path, transformer: Optional[str]) -> None:
    """The pipeline to package: a transformer pipeline with its int8 encoder,
    built here once (in a child process: its peak memory is about ten times
    the encoder's fp32 size), so that nothing is exported where the package
    is installed; without the tools it is packaged as it is and predicts
    with torch."""
    missing = int8_tools_missing() if transformer else None
    if not transformer or missing:
        if missing:
            msg.warn(f"No int8 encoder in the package: {missing}. It predicts with torch on CPUs.")
        shutil.copytree(model_dir, pipeline_dir)
        return
    msg.info("Building the transformer's int8 encoder into the package (once; about ten times its size in memory)")
    try:
        (settings,) = write_int8_pipeline(model_dir, pipeline_dir)
    except ValueError as err:
        msg.fail(f"{model_dir} cannot get an int8 encoder: {err}", exits=1)
    msg.good(f"int8 encoder: {settings['quantization']}")


def served_int8_scores(pipeline_dir: Path, corpus_dir: Path, lang: str) -> Optional[Dict[str, Any]]:
    """The dev and test scores of the package's int8 encoder, as users' CPUs
    with VNNI or AMX will compute them, beside the torch scores of the
    evaluate step; None where this machine cannot predict in int8."""
    nlp = spacy.load(pipeline_dir)
    if prediction_runtime(nlp)["precision"] != "int8":
        msg.warn("This machine does not predict in int8 (no VNNI or AMX, or no onnxruntime): no served int8 scores")
        return None
    paths = evaluation_paths(corpus_dir, lang)
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        msg.warn(f"No served int8 scores: {', '.join(missing)} missing (the convert step writes them)")
        return None
    scores = {}
    for name, path in paths.items():
        metrics, _ = evaluate_docbin(nlp, path)
        scores[name] = score_summary(metrics)
        msg.good(f"{name}, served in int8: F1 {metrics['ents_f']:.4f}")
    return scores


def main(
    model_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="training/<run>/model-best"),
    output_dir: Path = typer.Argument(..., help="Folder to create the package in"),
    lang: str = typer.Option(..., "--lang", help="en, es, nl or multi"),
    encoder: str = typer.Option(
        "", "--encoder", help="Short encoder name for the package name; empty: derived from the pipeline's transformer"
    ),
    version: str = typer.Option(..., "--version", help="Package version"),
    metrics_path: Path = typer.Option(..., "--metrics", exists=True, help="metrics/<run>/metrics.json"),
    train_log: Path = typer.Option(..., "--train-log", exists=True, help="training/<run>/train_log.jsonl"),
    corpus_dir: Path = typer.Option(
        Path("corpus"), "--corpus", help="Output folder of the convert step: the int8 encoder's served scores"
    ),
    distillation_path: Optional[Path] = typer.Option(
        None,
        "--distillation",
        exists=True,
        dir_okay=False,
        help="A distilled student's metrics/<run>/distillation.json: the card shows the teacher, the name says distilled",
    ),
) -> None:
    """The package is named after the checkpoint the pipeline was trained
    from (its config says which), unless --encoder names it; a distilled
    student's name ends in _distilled."""
    transformer = pipeline_transformer(load_config(model_dir / "config.cfg", interpolate=True))
    try:
        encoder = encoder_name(transformer, encoder)
    except ValueError as err:
        msg.fail(f"--encoder: {err}", exits=1)
    distillation = json.loads(distillation_path.read_text(encoding="utf8")) if distillation_path else None
    name = f"ner_{CORPUS_NAMES[lang]}_{encoder}" + ("_distilled" if distillation else "")
    full_name = f"{spacy_lang(lang)}_{name}"
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output_dir, prefix=".build-") as tmp:
        pipeline_dir = Path(tmp) / full_name
        copy_pipeline(model_dir, pipeline_dir, transformer)
        served = served_int8_scores(pipeline_dir, corpus_dir, lang) if transformer else None
        meta = json.loads((pipeline_dir / "meta.json").read_text(encoding="utf8"))
        meta["description"] = (
            f"NER for {', '.join(languages(lang))} trained on {CORPUS_NAMES[lang].upper()} "
            f"with encoder {encoder}"
            + (f", distilled from {distillation['teacher_pipeline']} through silver data" if distillation else "")
            + "; entity scores as conlleval computes them."
        )
        (pipeline_dir / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf8")
        write_model_card(
            pipeline_dir,
            train_log,
            metrics_path,
            pipeline_dir,
            package_name=full_name,
            version=version,
            lang=lang,
            dataset_names={language: HUB_DATASETS[language] for language in languages(lang)},
            distillation=distillation,
            served_int8=served,
        )
        spacy_package(
            pipeline_dir,
            output_dir,
            code_paths=standalone_code_paths(),
            name=name,
            version=version,
            create_sdist=False,
            create_wheel=False,
            force=True,
            silent=False,
        )
    package_dir = output_dir / f"{full_name}-{version}"
    add_pipeline_modules(package_dir / full_name)
    drop_project_requirement(package_dir / "meta.json")
    # what `spacy package --build wheel` runs, after the requirements are right
    subprocess.run([sys.executable, "-m", "build", ".", "--wheel"], cwd=package_dir, check=True)
    # package_dir is named after the name and version, so its dist/ holds one wheel, rebuilt in place
    (wheel,) = (package_dir / "dist").glob("*.whl")
    msg.good(f"Packaged {full_name} {version}. Install it with:")
    # the spaCy language prefix (xx for multi) is only known here, so say the exact path
    print(f"pip install {wheel}")


if __name__ == "__main__":
    typer.run(main)

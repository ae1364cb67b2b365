"""Package a trained pipeline as an installable wheel with its model card,
its int8 encoder (transformer pipelines, where onnxruntime is installed) and
the project code it needs at load time (the scorer and conll_ner/pipeline/).
Progress goes to `msg` (a wasabi Printer), as spaCy's own commands report it."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from spacy.cli.package import package as spacy_package
from wasabi import Printer

from ..runs import HUB_DATASETS, languages
from .int8 import int8_tools_missing, write_int8_pipeline
from .meta import drop_project_requirement, set_description
from .model_card import check_run_metrics, write_model_card
from .naming import full_package_name, package_description, package_name
from .pipeline_code import add_pipeline_modules, standalone_code_paths
from .served_scores import served_int8_scores


class PackagingError(ValueError):
    """A pipeline that cannot be packaged as asked."""


def copy_pipeline(model_dir: Path, pipeline_dir: Path, transformer: Optional[str], msg: Printer) -> None:
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
        raise PackagingError(f"{model_dir} cannot get an int8 encoder: {err}") from err
    msg.good(f"int8 encoder: {settings['quantization']}")


def build_package(
    model_dir: Path,
    output_dir: Path,
    msg: Printer,
    *,
    lang: str,
    transformer: Optional[str],
    encoder: str,
    version: str,
    metrics_path: Path,
    train_log: Path,
    corpus_dir: Path,
    distillation_path: Optional[Path] = None,
) -> Path:
    """Build the package of `model_dir` (whose checkpoint and encoder name
    naming.pipeline_encoder gives) in output_dir and its wheel; the wheel's
    path. A distilled student's distillation.json puts its teacher on the
    card and _distilled in its name."""
    try:
        check_run_metrics(metrics_path, lang)
    except ValueError as err:
        raise PackagingError(str(err)) from err
    distillation = json.loads(distillation_path.read_text(encoding="utf8")) if distillation_path else None
    name = package_name(lang, encoder, bool(distillation))
    full_name = full_package_name(lang, encoder, bool(distillation))
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output_dir, prefix=".build-") as tmp:
        pipeline_dir = Path(tmp) / full_name
        copy_pipeline(model_dir, pipeline_dir, transformer, msg)
        served = served_int8_scores(pipeline_dir, corpus_dir, lang, msg) if transformer else None
        set_description(pipeline_dir / "meta.json", package_description(lang, encoder, distillation))
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
    return wheel

"""Rewriting a pipeline's meta.json before and after `spacy package`."""

import json
from pathlib import Path

from ..files import write_json

PROJECT_DISTRIBUTION = "conll-ner"


def read_meta(meta_path: Path) -> dict:
    return json.loads(Path(meta_path).read_text(encoding="utf8"))


def set_description(meta_path: Path, description: str) -> None:
    """The description the package's meta.json and PyPI page show."""
    meta = read_meta(meta_path)
    meta["description"] = description
    write_json(meta_path, meta)


def drop_project_requirement(meta_path: Path) -> None:
    """spaCy requires the distribution of every registered function in the
    config, which adds this project (`conll-ner`, not on PyPI) for the training
    logger, reader and schedule. Loading needs only the scorer and the
    modules of conll_ner/pipeline/, which travel
    in the package as code, so the requirement would only make installs fail."""
    meta = read_meta(meta_path)
    meta["requirements"] = [req for req in meta["requirements"] if not req.startswith(PROJECT_DISTRIBUTION)]
    write_json(meta_path, meta)

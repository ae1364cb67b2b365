"""The project code a packaged pipeline carries: the scorer its config names
and every module of conll_ner/pipeline/, which run when it loads and
predicts, so that the package needs no install of this project.

spaCy's `package --code` takes stand-alone modules: it imports each file
alone to check it, which the modules of conll_ner/pipeline/ cannot pass (they
import each other, relatively). So the scorer, stand-alone, goes through
`--code`, and the pipeline's modules are added to the package as `--code`
adds its files: copied beside the package's `__init__.py`, which imports each
(`from . import name`), where their relative imports find each other.
Pipelines packaged before carry their own copy of the code they run.
"""

import shutil
from pathlib import Path
from typing import List

import conll_ner.evaluation.scoring
import conll_ner.pipeline


def standalone_code_paths() -> List[Path]:
    """The modules for spaCy's `package --code`: the scorer."""
    return [Path(conll_ner.evaluation.scoring.__file__)]


def pipeline_modules() -> List[Path]:
    """Every module of conll_ner/pipeline/."""
    return sorted(Path(conll_ner.pipeline.__file__).parent.glob("[!_]*.py"))


def add_pipeline_modules(package_path: Path) -> None:
    """Copy the pipeline's modules into a package that `spacy package` made
    (`package_path` holds its `__init__.py`) and import them there."""
    init = package_path / "__init__.py"
    imports = []
    for module in pipeline_modules():
        shutil.copy(module, package_path / module.name)
        imports.append(f"from . import {module.stem}\n")
    init.write_text(init.read_text(encoding="utf8") + "".join(imports), encoding="utf8")

"""Every function the configs name resolves through the project's entry
points alone, in a process that imported nothing of the project: `spacy
train`, `spacy.load` and plain spaCy commands find them however a config is
overridden (a name that resolves only because another registered function
imported its module first breaks as soon as that one is switched off)."""

import re
import subprocess
import sys

import pytest
from conftest import PROJECT_DIR

REGISTERED = re.compile(r'"?@(\w+)"?\s*[=:]\s*"(conll_ner\.[\w.]+)"')


def project_registrations():
    found = set()
    for config in sorted((PROJECT_DIR / "configs").glob("*.cfg")):
        found.update(REGISTERED.findall(config.read_text(encoding="utf8")))
    return sorted(found)


def test_the_configs_name_functions_of_the_project():
    names = {name for _, name in project_registrations()}
    assert {
        "conll_ner.TransformerListener.v1",
        "conll_ner.transformer_on_cpu.v1",
        "conll_ner.numpy_matmul_on_cpu.v1",
        "conll_ner.seqeval_scorer.v1",
    } <= names


@pytest.mark.parametrize("kind,name", project_registrations())
def test_each_name_resolves_from_entry_points_alone(kind, name):
    script = f"import spacy; print(spacy.registry.{kind}.get({name!r}).__module__)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_DIR.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith("conll_ner.")


def test_a_pipeline_loads_with_before_creation_switched_off(tmp_path):
    """The after_pipeline_creation callback resolves on its own, without the
    before_creation callback of the same module having imported it first."""
    from tiny_models import build_tiny_transformer_pipeline

    pipeline = build_tiny_transformer_pipeline(tmp_path)
    script = (
        f"import spacy; nlp = spacy.load({str(pipeline)!r}, config={{'nlp.before_creation': None}}); "
        "print(nlp.config['nlp']['after_pipeline_creation']['@callbacks'], len(nlp('EU rejects German call .')))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_DIR.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["conll_ner.transformer_on_cpu.v1", "5"]

"""Every function the configs name has an entry point of the project, so
`spacy train`, `spacy.load` and plain spaCy commands find it however a config
is overridden (a name that resolves only because another registered function
imported its module first breaks as soon as that one is switched off)."""

import re
import subprocess
import sys

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
        "conll_ner.TransformerModel.v1",
        "conll_ner.numpy_matmul_on_cpu.v2",
        "conll_ner.seqeval_scorer.v1",
    } <= names


def test_each_name_has_an_entry_point():
    """Looked up among the entry points alone (catalogue's get_entry_point),
    so that one name cannot resolve through a module another one imported."""
    import spacy

    missing = [
        f"{kind}: {name}"
        for kind, name in project_registrations()
        if getattr(spacy.registry, kind).get_entry_point(name) is None
    ]
    assert not missing, missing


def test_a_pipeline_loads_with_its_callback_switched_off(tmp_path):
    """The transformer's architecture resolves on its own, without the
    after_pipeline_creation callback having imported the project first."""
    from tiny_models import build_tiny_transformer_pipeline

    pipeline = build_tiny_transformer_pipeline(tmp_path)
    script = (
        f"import spacy; nlp = spacy.load({str(pipeline)!r}, config={{'nlp.after_pipeline_creation': None}}); "
        "print(nlp.config['components']['transformer']['model']['@architectures'], len(nlp('EU rejects German call .')))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_DIR.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["conll_ner.TransformerModel.v1", "5"]

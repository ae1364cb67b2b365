"""What the serving tests share: the pipelines they serve and a client of
the server's API (the stdlib's, so that it needs nothing installed)."""

import json
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import serving_components  # noqa: F401 (registers the component the pipeline is saved with)
import spacy
from conftest import PROJECT_DIR

# the server imports it with --code
CODE = str(PROJECT_DIR / "tests" / "serving_components.py")
PATTERNS = [{"label": "PER", "pattern": "Ada Lovelace"}, {"label": "LOC", "pattern": "London"}]


def save_pipeline(path: Path, faults: bool = True) -> Path:
    """An entity ruler named `ner`, deterministic and fast; with `faults`,
    the component that raises on "boom" and sleeps on "sleepy" (the server
    then needs --code CODE)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler", name="ner").add_patterns(PATTERNS)
    if faults:
        nlp.add_pipe("serving_test_faults")
    nlp.meta.update({"name": "served_ruler", "version": "2.1.0"})
    nlp.to_disk(path)
    return path


def post(url: str, body: bytes, headers: Optional[Dict[str, str]] = None, timeout: float = 60) -> Tuple[int, Any]:
    """(status, JSON answer) of a POST with a raw body."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def post_texts(url: str, texts: List[str]) -> Tuple[int, Any]:
    return post(url + "ents", json.dumps({"texts": texts}).encode("utf8"))


def entities(results: List[Dict[str, Any]]) -> List[List[Tuple[int, int, str, str]]]:
    return [[(e["start_char"], e["end_char"], e["label"], e["text"]) for e in result["entities"]] for result in results]

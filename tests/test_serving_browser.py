"""The page at / in a real browser: the server with a tiny trained
transformer pipeline, the page opened in headless Chromium (Debian's
package; .ci/run installs it), a text typed and submitted, and displaCy's
highlighted entities on the page, as the API returns them."""

import json

import pytest
from browser import CHROMIUM, page_entities
from conftest import PROJECT_DIR
from tiny_models import trained_tiny_transformer

from conll_ner.serving.process import running_server

pytest.importorskip("fastapi", reason="serving needs requirements-serve.txt")
pytest.importorskip("websockets", reason="the browser test drives chromium with websockets (requirements-dev.txt)")
if CHROMIUM is None:
    pytest.skip("chromium is absent: apt-get install chromium (.ci/run does)", allow_module_level=True)

from served_pipelines import post_texts  # noqa: E402

TEXT = "Peter Blackburn visited Brussels ."


def test_the_page_highlights_the_entities_of_a_submitted_text(tmp_path):
    pipeline = trained_tiny_transformer(tmp_path / "tiny")
    with running_server(PROJECT_DIR, [str(pipeline)], tmp_path / "server.log", timeout=180) as (url, _):
        status, answer = post_texts(url, [TEXT])
        assert status == 200
        expected = [{"label": e["label"], "text": e["text"]} for e in answer["results"][0]["entities"]]
        assert expected, "the pipeline finds no entity in the text: the page would show nothing to check"
        shown = page_entities(url, TEXT, tmp_path / "page.png")
    assert shown == expected, json.dumps(shown)
    assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

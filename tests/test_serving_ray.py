"""The ray engine of the server: the same application as a Ray Serve
deployment of 2 replicas on a local Ray instance (started by the server
process, 1 CPU per replica), with the same API as the local engine."""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import PROJECT_DIR
from served_pipelines import CODE, entities, post, post_texts, save_pipeline  # noqa: E402

from conll_ner.serving.process import get_json, running_server
from conll_ner.serving.settings import ServeError


def test_the_ray_engine_says_how_to_install_ray_serve(monkeypatch):
    from conll_ner.serving.ray_serve import import_serve

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ServeError, match=r"pip install -r requirements-serve.txt"):
        import_serve()


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory):
    pytest.importorskip("ray.serve", reason="the ray engine needs Ray Serve (pip install -r requirements-serve.txt)")
    root = tmp_path_factory.mktemp("ray_served")
    args = [str(save_pipeline(root / "ruler")), "--code", CODE, "--engine", "ray", "--workers", "2", "--threads", "1"]
    with running_server(PROJECT_DIR, args, root / "server.log", timeout=400) as (url, process):
        yield url, process, root / "server.log"


def test_two_replicas_answer_with_the_same_api(ray_server):
    url, _, log = ray_server
    # each replica loads the pipeline on its own: wait until both answer ready
    # (each answer names its process; Ray Serve's router spreads the requests)
    ready = set()
    deadline = time.monotonic() + 300
    started = "Ray Serve: 2 replicas of conll_ner_entities running"
    with ThreadPoolExecutor(8) as pool:
        while (len(ready) < 2 or started not in log.read_text()) and time.monotonic() < deadline:
            answers = list(pool.map(lambda _: get_json(url + "health"), range(32)))
            ready |= {answer["worker"] for status, answer in answers if status == 200}
    assert len(ready) == 2
    assert started in log.read_text()
    status, answer = post_texts(url, ["Ada Lovelace lived in London.", ""])
    assert status == 200
    assert answer["pipeline"]["name"] == "en_served_ruler"
    assert entities(answer["results"]) == [[(0, 12, "PER", "Ada Lovelace"), (22, 28, "LOC", "London")], []]
    # bad requests and a failing text are answered as on the local engine
    assert post(url + "ents", b'{"texts": []}')[0] == 422
    assert post(url + "ents", json.dumps({"texts": ["x"] * 257}).encode())[1]["limit"] == "max_texts"
    assert post_texts(url, ["boom"]) == (
        500,
        {"error": "text 0: the pipeline failed on this text: ValueError('boom')", "limit": None, "max": None},
    )
    assert post_texts(url, ["London"])[0] == 200

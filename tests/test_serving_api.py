"""The HTTP server against a real server process (scripts/serve.py on a
free loopback port): the entities API, its OpenAPI description, health and
metrics, every kind of bad request (each answered, and the server serving
on), an exception in the pipeline, and SIGTERM with a request in flight.

The pipeline is an entity ruler named `ner` with a component that raises on
"boom" and sleeps on "sleepy" (tests/served_pipelines.py; the server imports
the component with --code): deterministic, so every answer is known."""

import http.client
import json
import signal
import socket
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import PROJECT_DIR

from conll_ner.serving.process import get_json, running_server

pytest.importorskip("fastapi", reason="serving needs requirements-serve.txt")
pytest.importorskip("uvicorn", reason="serving needs requirements-serve.txt")

from served_pipelines import CODE, entities, post, post_texts, save_pipeline  # noqa: E402


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    return save_pipeline(tmp_path_factory.mktemp("served") / "ruler")


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "server.log"
    with running_server(PROJECT_DIR, [str(pipeline), "--code", CODE], log, timeout=180) as (url, process):
        yield url, process


def test_ents_gives_each_texts_entities_in_order_with_the_pipeline(server):
    url, process = server
    status, answer = post_texts(url, ["Ada Lovelace lived in London.", "", "   ", "Nothing here.", "London, London"])
    assert status == 200
    assert answer["pipeline"] == {"name": "en_served_ruler", "version": "2.1.0", "device": "cpu", "precision": "fp32"}
    assert entities(answer["results"]) == [
        [(0, 12, "PER", "Ada Lovelace"), (22, 28, "LOC", "London")],
        [],
        [],
        [],
        [(0, 6, "LOC", "London"), (8, 14, "LOC", "London")],
    ]
    assert get_json(url + "health") == (200, {"status": "ready", "pipeline": answer["pipeline"], "worker": process.pid})


def test_the_openapi_description_names_the_request_and_the_answer(server):
    url, _ = server
    status, spec = get_json(url + "openapi.json")
    assert status == 200
    ents = spec["paths"]["/ents"]["post"]
    assert ents["requestBody"]["content"]["application/json"]["schema"]["properties"]["texts"]["type"] == "array"
    answer = ents["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert set(spec["components"]["schemas"][answer]["properties"]) == {"pipeline", "results"}
    assert {"413", "422", "500"} <= set(ents["responses"])


def test_a_text_of_a_megabyte_under_the_limit_is_annotated_whole(server):
    url, _ = server
    sentence = "Ada Lovelace wrote from London. "
    repeats = 1_000_000 // len(sentence)  # just under a million characters, cut into pieces by the server
    text = sentence * repeats
    status, answer = post_texts(url, [text])
    assert status == 200
    found = entities(answer["results"])[0]
    assert len(found) == 2 * repeats
    assert found[-1] == (len(text) - 8, len(text) - 2, "LOC", "London")


BAD_REQUESTS = {
    "not JSON": (b"texts: Ada", 400, "not JSON", None),
    "not UTF-8": (b'{"texts": ["\xff\xfe London"]}', 400, "not UTF-8", None),
    "a list, not an object": (b'["London"]', 422, "the body: Input should be a valid dictionary", None),
    "texts missing": (b'{"text": ["London"]}', 422, "texts: Field required", None),
    "texts a string": (b'{"texts": "London"}', 422, "texts: Input should be a valid list", None),
    "a number for a text": (b'{"texts": ["London", 3]}', 422, "texts.1: Input should be a valid string", None),
    "an empty list": (b'{"texts": []}', 422, "at least 1 item", None),
    "an unpaired surrogate": (b'{"texts": ["\\ud800 London"]}', 422, "text 0 holds an unpaired surrogate", None),
    "too many texts": (json.dumps({"texts": ["London"] * 257}).encode(), 413, "257 texts", "max_texts"),
    "a text too long": (json.dumps({"texts": ["a" * 1_000_001]}).encode(), 413, "text 0 of", "max_text_chars"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_each_bad_request_gets_a_clear_answer_and_the_server_serves_on(server, case):
    url, process = server
    body, expected_status, message, limit = BAD_REQUESTS[case]
    status, answer = post(url + "ents", body)
    assert status == expected_status, answer
    assert message in answer["error"]
    assert answer["limit"] == limit
    if limit:
        assert answer["max"] == {"max_texts": 256, "max_text_chars": 1_000_000, "max_request_bytes": 8 * 2**20}[limit]
    assert post_texts(url, ["London"])[0] == 200
    assert process.poll() is None


def test_a_body_over_the_limit_is_refused_before_it_is_sent(server):
    """As curl sends a large body: Expect: 100-continue, and the body only
    once the server asks for it, which it does not over the limit."""
    url, process = server
    host, port = url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        connection.sendall(
            b"POST /ents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 9000000\r\nExpect: 100-continue\r\n\r\n"
        )
        response = http.client.HTTPResponse(connection)
        response.begin()
        status, answer = response.status, json.loads(response.read())
    assert status == 413
    assert answer == {
        "error": "the body of 9,000,000 bytes is over the limit of 8,388,608 (max_request_bytes)",
        "limit": "max_request_bytes",
        "max": 8 * 2**20,
    }
    assert post_texts(url, ["London"])[0] == 200 and process.poll() is None


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(server):
    url, process = server
    host, port = url.split("//")[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    # the limit is passed by the last chunk: nothing is left unread when the server answers
    chunks = (b'{"texts": ["' if i == 0 else b"a" * 2**20 for i in range(9))
    connection.request("POST", "/ents", body=chunks, encode_chunked=True)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert (response.status, answer["limit"]) == (413, "max_request_bytes")
    assert post_texts(url, ["London"])[0] == 200 and process.poll() is None


def test_an_exception_in_the_pipeline_fails_that_request_only(server):
    url, process = server
    texts = [["Ada Lovelace in London"], ["boom in London"], ["London"], ["more London"]]
    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(lambda t: post_texts(url, t), texts * 3))
    for (status, answer), sent in zip(answers, texts * 3):
        if sent == ["boom in London"]:
            assert status == 500
            assert answer["error"] == "text 0: the pipeline failed on this text: ValueError('boom')"
        else:
            assert status == 200 and answer["results"][0]["entities"]
    assert get_json(url + "health")[0] == 200 and process.poll() is None


def test_metrics_count_requests_texts_batches_and_latencies(server):
    url, _ = server
    before = get_json(url + "metrics")[1]
    assert post_texts(url, ["London", "Ada Lovelace", "x"])[0] == 200
    assert post(url + "ents", b"nonsense")[0] == 400
    assert get_json(url + "no-such-page")[0] == 404
    after = get_json(url + "metrics")[1]
    assert after["requests"]["GET (other) 404"] == before["requests"].get("GET (other) 404", 0) + 1
    assert not any("no-such-page" in route for route in after["requests"])
    assert after["requests"]["POST /ents 200"] == before["requests"].get("POST /ents 200", 0) + 1
    assert after["requests"]["POST /ents 400"] == before["requests"].get("POST /ents 400", 0) + 1
    assert after["texts"] == before["texts"] + 3
    assert after["batches"] == before["batches"] + 1
    assert after["largest_batch_texts"] >= 3
    assert after["latency_ms"]["requests"] == before["latency_ms"]["requests"] + 1
    assert 0 < after["latency_ms"]["p50"] <= after["latency_ms"]["p99"] <= after["latency_ms"]["max"]


def test_the_page_shows_the_labels_and_a_curl_line_that_works(server):
    url, _ = server
    with urllib.request.urlopen(url, timeout=30) as response:
        page = response.read().decode("utf8")
    assert "en_served_ruler 2.1.0" in page and ">LOC</span>" in page and ">PER</span>" in page
    assert f"curl -s {url}ents" in page
    # nothing is fetched from elsewhere: the page works offline
    assert "http" not in page.replace(url, "").replace("Content-Type", "")
    status, rendered = post(url + "render", json.dumps({"texts": ["Ada Lovelace lived in London."]}).encode())
    assert status == 200 and rendered["html"].count('<mark class="entity"') == 2


def test_sigterm_lets_the_request_in_flight_finish(pipeline, tmp_path):
    answers = []
    with running_server(PROJECT_DIR, [str(pipeline), "--code", CODE], tmp_path / "server.log", timeout=180) as (
        url,
        process,
    ):
        client = threading.Thread(target=lambda: answers.append(post_texts(url, ["sleepy Ada Lovelace"])))
        client.start()
        # once its batch has started, the request is in the pipeline, which sleeps 3 s on it
        deadline = time.monotonic() + 60
        while get_json(url + "metrics")[1]["batches"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        client.join(60)
        # uvicorn stops gracefully, then raises the signal again, as its own exit status
        assert process.wait(60) in (0, -signal.SIGTERM)
        assert "Finished server process" in (tmp_path / "server.log").read_text()
    assert answers and answers[0][0] == 200
    assert entities(answers[0][1]["results"]) == [[(7, 19, "PER", "Ada Lovelace")]]


def test_a_pipeline_that_cannot_load_is_reported_by_health(pipeline, tmp_path):
    """Without --code its component is unknown: /health says why, at once."""
    with pytest.raises(RuntimeError, match="could not load its pipeline: .*serving_test_faults"):
        with running_server(PROJECT_DIR, [str(pipeline)], tmp_path / "server.log", timeout=180):
            pass


def test_the_serve_command_of_the_project(tmp_path):
    """`spacy project run serve . --vars.model ...` as the README shows it,
    stopped with SIGTERM."""
    model = save_pipeline(tmp_path / "ruler", faults=False)
    with running_server(PROJECT_DIR, [], tmp_path / "server.log", project_command={"model": str(model)}) as (
        url,
        process,
    ):
        status, answer = post_texts(url, ["Ada Lovelace"])
        assert status == 200
        assert answer["pipeline"]["name"] == "en_served_ruler"
        assert entities(answer["results"]) == [[(0, 12, "PER", "Ada Lovelace")]]
    assert process.poll() is not None
    assert "Finished server process" in (tmp_path / "server.log").read_text()

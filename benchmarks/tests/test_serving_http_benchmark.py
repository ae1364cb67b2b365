"""The serving_http mode's harness on a small scale: its clients against a
real server (the entity ruler of served_pipelines.py), bounded in
requests and in time, the words of the answered requests, its targets and
its report."""

import asyncio

import pytest
from processes import PROJECT_DIR

pytest.importorskip("fastapi", reason="serving needs requirements-serve.txt")

from modes import serving_http
from served_pipelines import save_pipeline

from conll_ner.serving.process import running_server

TEXTS = ["Ada Lovelace lived in London .", "London", "Nothing to see here at all ."]


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    root = tmp_path_factory.mktemp("http_benchmark")
    settings = {"clients": 4, "max_requests": 40, "max_seconds": 30, "batch_size": 8, "max_batch_texts": 8}
    settings["max_wait_ms"] = 5
    return serving_http.measure_http(save_pipeline(root / "ruler", faults=False), TEXTS, root, settings), settings


def test_the_clients_stop_at_the_request_bound_and_count_the_answered_words(measured):
    results, _ = measured
    words = [len(text.split()) for text in TEXTS]
    assert results["offline"]["words"] == sum(words) and results["offline"]["precision"] == "fp32"
    for name, variant in results["served"].items():
        # 4 clients may each have one request in flight when the bound is reached
        assert 40 <= variant["requests"] < 44 and variant["errors"] == 0, name
        assert variant["words"] >= 40 * min(words)
        assert variant["latency_p50_ms"] <= variant["latency_p99_ms"]
        assert variant["pipeline"]["name"] == "en_served_ruler"
    assert results["served"]["no_batching"]["mean_batch_texts"] == 1
    assert results["served"]["micro_batching"]["largest_batch_texts"] <= 8


def test_the_time_bound_stops_a_load(tmp_path):
    with running_server(
        PROJECT_DIR, [str(save_pipeline(tmp_path / "ruler", faults=False))], tmp_path / "server.log"
    ) as (
        url,
        _,
    ):
        load = asyncio.run(serving_http.load(url, TEXTS, clients=2, max_requests=10**9, max_seconds=2))
    assert 0 < load["requests"] < 10**9 and 2 <= load["seconds"] < 30


def test_the_report_shows_both_loads_and_the_targets(measured):
    results, settings = measured
    header = {"command": "x", "date": "today", "mode": "serving_http_quick", "settings": settings}
    machine = {"cpu": "a CPU", "cores": 2, "platform": "Linux"}
    full = {**header, "machine": machine, "pipeline": "benchmarks/work/ruler", "sentences": 3, **results}
    full["targets"] = serving_http.http_targets(full)
    full["ratios"] = {"words/s, micro batching / offline nlp.pipe": 0.5}
    full["remarks"] = ["the machine was shared"]
    page = serving_http.report_markdown(full)
    assert "| micro-batching (<= 8 texts, <= 5 ms wait) | " in page
    assert "| no micro-batching (one request per nlp.pipe call) | " in page
    assert "- no request failed: met" in page and "- the machine was shared" in page
    slow = {
        **full,
        "served": {**full["served"], "micro_batching": {**full["served"]["micro_batching"], "words_per_second": 0}},
    }
    assert not all(serving_http.http_targets(slow).values())

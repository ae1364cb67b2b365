"""Micro-batching (conll_ner/serving/batcher.py): concurrent requests share
one annotate call within the wait and the batch bound, each caller gets its
own texts' rows, and a text's entities on a transformer pipeline do not
depend on the requests it shared a batch with."""

import asyncio
import threading
from typing import List

import pytest
from tiny_models import TRAIN, trained_tiny_transformer

from conll_ner.inference.annotator import Entity, Row
from conll_ner.serving.batcher import MicroBatcher
from conll_ner.serving.pipeline import load_served_pipeline
from conll_ner.serving.settings import ServeSettings


class Recorder:
    """A fake annotate: one entity per text (the whole text), and the
    batches it was called with."""

    def __init__(self, fail_on: str = "") -> None:
        self.batches: List[List[str]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, texts: List[str]) -> List[Row]:
        with self.lock:
            self.batches.append(list(texts))
        if self.fail_on in texts:
            raise RuntimeError("broken")
        return [Row(0, i, i, [Entity(0, len(text), "X", text)]) for i, text in enumerate(texts)]


async def submit_all(batcher: MicroBatcher, requests: List[List[str]]):
    batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(texts) for texts in requests), return_exceptions=True)
    finally:
        await batcher.stop()


def texts_of(rows: List[Row]) -> List[str]:
    return [row.entities[0].text for row in rows]


def test_concurrent_requests_share_a_batch_and_each_gets_its_own_rows():
    annotate = Recorder()
    requests = [["a"], ["b", "c"], ["d"], ["e", "f", "g"]]
    batcher = MicroBatcher(annotate, max_batch_texts=64, max_wait=0.5)
    answers = asyncio.run(submit_all(batcher, requests))
    assert [texts_of(rows) for rows in answers] == requests
    assert annotate.batches == [["a", "b", "c", "d", "e", "f", "g"]]
    assert batcher.metrics.to_dict()["mean_batch_requests"] == 4


def test_a_batch_never_passes_its_bound_and_a_request_is_never_split():
    annotate = Recorder()
    requests = [["a", "b"], ["c", "d"], ["e"], ["f", "g", "h", "i", "j"], ["k"]]
    answers = asyncio.run(submit_all(MicroBatcher(annotate, max_batch_texts=3, max_wait=0.5), requests))
    assert [texts_of(rows) for rows in answers] == requests
    # ["c", "d"] would overflow the first batch and waits for the next; a
    # request larger than the bound goes alone
    assert annotate.batches == [["a", "b"], ["c", "d", "e"], ["f", "g", "h", "i", "j"], ["k"]]


def test_a_bound_of_one_text_annotates_each_request_alone():
    annotate = Recorder()
    requests = [["a"], ["b"], ["c", "d"]]
    answers = asyncio.run(submit_all(MicroBatcher(annotate, max_batch_texts=1, max_wait=0.5), requests))
    assert [texts_of(rows) for rows in answers] == requests
    assert annotate.batches == requests


def test_a_failed_batch_fails_its_requests_and_the_next_batch_is_annotated():
    annotate = Recorder(fail_on="bad")
    requests = [["bad"], ["a"], ["b", "c"]]
    answers = asyncio.run(submit_all(MicroBatcher(annotate, max_batch_texts=2, max_wait=0.5), requests))
    assert isinstance(answers[0], RuntimeError) and isinstance(answers[1], RuntimeError)
    assert texts_of(answers[2]) == ["b", "c"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tiny transformer pipeline of the shipped config, trained to find entities."""
    path = trained_tiny_transformer(tmp_path_factory.mktemp("tiny"))
    return load_served_pipeline(ServeSettings(model=str(path)))


def entities(rows: List[Row]):
    return [[(e.start_char, e.end_char, e.label) for e in row.entities] for row in rows]


def test_a_texts_entities_do_not_depend_on_the_requests_that_share_its_batch(served):
    long_text = " ".join(text for text, _ in TRAIN) * 12  # over one transformer window
    texts = [text for text, _ in TRAIN] + ["Peter Blackburn", long_text, "Brussels and the European Commission ."]
    alone = [entities(served.annotate([text])) for text in texts]
    assert sum(len(found[0]) for found in alone) >= 3, "the pipeline finds no entities: equality would prove nothing"
    groupings = [
        [[text] for text in texts],
        [[text] for text in reversed(texts)],
        [texts[:3], texts[3:5], texts[5:]],
        [texts[::2], texts[1::2]],
    ]
    for requests in groupings:
        batcher = MicroBatcher(served.annotate, max_batch_texts=64, max_wait=0.5)
        answers = asyncio.run(submit_all(batcher, requests))
        assert batcher.metrics.batches == 1 and batcher.metrics.batch_requests == len(requests)
        for request, rows in zip(requests, answers):
            assert entities(rows) == [alone[texts.index(text)][0] for text in request]

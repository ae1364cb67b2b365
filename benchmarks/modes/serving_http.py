"""Serving over HTTP under load (the `serving_http` mode): `clients` concurrent clients on loopback, each sending
one dev sentence per request to POST /ents of scripts/serve.py, with
micro-batching and without (max_batch_texts 1), against the same
pipeline's offline nlp.pipe words/s on the same sentences. Each load is
bounded in requests and in seconds; the clients keep their connections
open (HTTP/1.1 keep-alive) and are plain asyncio streams, so that the
client side takes little of the CPU that the server needs.
"""

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

from common import mode_header, ratios_and_targets, remarks
from processes import PROJECT_DIR, long_quick_pipeline

from conll_ner.serving.metrics import percentile
from conll_ner.serving.process import get_json, running_server

RESULTS_FILE = "results.json"
RESULTS_KEY = "serving_http"

# the requests of each load before the measured ones: connections, the
# pipeline's first batches
WARM_UP_REQUESTS_PER_CLIENT = 2


async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes) -> int:
    """One POST on an open keep-alive connection; its status (the body is read and dropped)."""
    writer.write(
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (path.encode(), len(body), body)
    )
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def load(url: str, texts: Sequence[str], clients: int, max_requests: int, max_seconds: float) -> Dict[str, Any]:
    """`clients` clients sending one text each per request, the texts in
    turn, until `max_requests` are answered or `max_seconds` have passed."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    bodies = [json.dumps({"texts": [text]}).encode("utf8") for text in texts]
    sent: List[int] = []
    latencies: List[float] = []
    errors: List[int] = []

    async def client(requests: int, deadline: float) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while len(sent) < requests and time.perf_counter() < deadline:
                index = len(sent) % len(bodies)
                sent.append(index)
                started = time.perf_counter()
                status = await post(reader, writer, "/ents", bodies[index])
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors.append(status)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(max_requests, started + max_seconds) for _ in range(clients)))
    seconds = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "sent": list(sent),
        "seconds": seconds,
        "latencies": latencies,
        "errors": errors,
    }


def load_summary(measured: Dict[str, Any], words: Sequence[int]) -> Dict[str, Any]:
    """Words/s and latencies of a load (the words of the answered requests)."""
    answered = measured["sent"][: measured["requests"]]
    total_words = sum(words[index] for index in answered)
    latencies = measured["latencies"]
    return {
        "requests": measured["requests"],
        "errors": len(measured["errors"]),
        "seconds": measured["seconds"],
        "words": total_words,
        "words_per_second": total_words / measured["seconds"],
        "requests_per_second": measured["requests"] / measured["seconds"],
        "latency_p50_ms": percentile(latencies, 0.5) * 1000,
        "latency_p99_ms": percentile(latencies, 0.99) * 1000,
    }


def offline_speed(pipeline: Path, texts: Sequence[str], batch_size: int) -> Dict[str, Any]:
    """The pipeline's nlp.pipe words/s on the texts in this process (one
    warm-up pass first), with its precision, and each text's words."""
    import spacy

    from conll_ner.pipeline.prediction_runtime import prediction_runtime

    nlp = spacy.load(pipeline)
    words = [len(nlp.make_doc(text)) for text in texts]
    for _ in nlp.pipe(texts[: 2 * batch_size], batch_size=batch_size):
        pass
    started = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "words": sum(words),
        "words_per_second": sum(words) / seconds,
        "batch_size": batch_size,
        "words_per_text": words,
        **prediction_runtime(nlp),
    }


def measure_http(pipeline: Path, texts: Sequence[str], work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """Offline nlp.pipe, then the same load on a server with micro-batching
    and on one without; each server's /metrics says how it batched."""
    work.mkdir(parents=True, exist_ok=True)
    offline = offline_speed(pipeline, texts, settings["batch_size"])
    words = offline.pop("words_per_text")
    variants = {"micro_batching": settings["max_batch_texts"], "no_batching": 1}
    served = {}
    for name, max_batch_texts in variants.items():
        args = [str(pipeline), "--batch-size", str(settings["batch_size"]), "--max-batch-texts", str(max_batch_texts)]
        args += ["--max-wait-ms", str(settings["max_wait_ms"])]
        with running_server(PROJECT_DIR, args, work / f"server-{name}.log") as (url, _):
            clients = settings["clients"]
            asyncio.run(load(url, texts, clients, clients * WARM_UP_REQUESTS_PER_CLIENT, float("inf")))
            before = get_json(url + "metrics")[1]
            measured = asyncio.run(load(url, texts, clients, settings["max_requests"], settings["max_seconds"]))
            after = get_json(url + "metrics")[1]
            health = get_json(url + "health")[1]
        served[name] = {
            "max_batch_texts": max_batch_texts,
            **load_summary(measured, words),
            # the measured load's batches, not the warm-up's
            "mean_batch_texts": (after["batched_texts"] - before["batched_texts"])
            / max(1, after["batches"] - before["batches"]),
            "largest_batch_texts": after["largest_batch_texts"],
            "pipeline": health["pipeline"],
        }
    return {"offline": offline, "served": served}


def http_targets(results: Dict[str, Any]) -> Dict[str, bool]:
    served, offline = results["served"], results["offline"]
    return {
        f"{results['settings']['clients']} clients, one sentence each, micro-batching: words/s >= 70% of offline "
        "nlp.pipe": served["micro_batching"]["words_per_second"] >= 0.7 * offline["words_per_second"],
        "no request failed": all(variant["errors"] == 0 for variant in served.values()),
    }


def run(data_dir: Path, work: Path, settings: Dict[str, Any]) -> Dict[str, Any]:
    """The mode: the pipeline in `pipeline` (below benchmarks/work), the
    first `dev_sentences` sentences of eng.testa as raw text."""
    from corpora import first_sentences

    model = long_quick_pipeline(settings, "the serving_http mode serves")
    sentences = first_sentences(data_dir / "conll2003" / "eng.testa", settings["dev_sentences"])
    texts = [" ".join(sentence.words) for sentence in sentences]
    measured = measure_http(model, texts, work, settings)
    ratios = {
        f"words/s, {name.replace('_', ' ')} / offline nlp.pipe": variant["words_per_second"]
        / measured["offline"]["words_per_second"]
        for name, variant in measured["served"].items()
    }
    results = {"pipeline": str(model), "sentences": len(texts), **measured, "ratios": ratios}
    return {**results, "targets": http_targets({**results, "settings": settings})}


def report_markdown(results: Dict[str, Any]) -> str:
    offline, served, settings = results["offline"], results["served"], results["settings"]
    pipeline = served["micro_batching"]["pipeline"]
    lines = [
        *mode_header("## Serving over HTTP under load (`serving_http` mode)", results),
        f"{pipeline['name']} {pipeline['version']} ({results['pipeline'].split('benchmarks/work/')[-1]}, predicting "
        f"in {pipeline['precision']} on the {pipeline['device']}) behind scripts/serve.py (one uvicorn worker) on "
        f"loopback: {settings['clients']} concurrent clients, each sending one sentence of the first "
        f"{results['sentences']:,} of eng.testa per request (raw text), for at most {settings['max_requests']:,} "
        f"requests or {settings['max_seconds']} s per load, after {WARM_UP_REQUESTS_PER_CLIENT} warm-up requests per "
        f"client (benchmarks/modes/serving_http.py). Offline: nlp.pipe on the same sentences in one process, batch "
        f"{offline['batch_size']}, {offline['words']:,} words in {offline['seconds']:.1f} s.",
        "",
        "| Load | Requests | Words/s | Share of offline words/s | Requests/s | p50 latency ms | p99 latency ms "
        "| Mean texts per batch | Errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| offline nlp.pipe (batch {offline['batch_size']}) | | {offline['words_per_second']:,.0f} | 100% | | | | | |",
    ]
    names = {
        "micro_batching": f"micro-batching (<= {settings['max_batch_texts']} texts, <= {settings['max_wait_ms']} ms wait)",
        "no_batching": "no micro-batching (one request per nlp.pipe call)",
    }
    for name, variant in served.items():
        lines.append(
            f"| {names[name]} | {variant['requests']:,} | {variant['words_per_second']:,.0f} | "
            f"{variant['words_per_second'] / offline['words_per_second']:.0%} | {variant['requests_per_second']:,.0f} | "
            f"{variant['latency_p50_ms']:,.1f} | {variant['latency_p99_ms']:,.1f} | {variant['mean_batch_texts']:.1f} | "
            f"{variant['errors']} |"
        )
    return "\n".join(lines + remarks(results) + ratios_and_targets(results)) + "\n"

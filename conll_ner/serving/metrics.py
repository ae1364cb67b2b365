"""Counters of a server, served at GET /metrics: requests by route and
status, texts, batches and their sizes, and the latency of recent entity
requests. Per worker: with several, each answers for itself."""

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List

# latencies kept for the percentiles: the most recent requests only, so
# memory stays bounded however long the server runs
LATENCY_WINDOW = 10_000


def percentile(values: List[float], share: float) -> float:
    """The nearest-rank percentile of `values` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Metrics:
    requests: Counter = field(default_factory=Counter)
    texts: int = 0
    batches: int = 0
    batch_texts: int = 0
    batch_requests: int = 0
    largest_batch_texts: int = 0
    latencies: Deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def record_request(self, route: str, status: int, seconds: float, texts: int = 0) -> None:
        self.requests[f"{route} {status}"] += 1
        self.texts += texts
        if texts:
            self.latencies.append(seconds)

    def record_batch(self, requests: int, texts: int) -> None:
        self.batches += 1
        self.batch_requests += requests
        self.batch_texts += texts
        self.largest_batch_texts = max(self.largest_batch_texts, texts)

    def to_dict(self) -> Dict[str, Any]:
        latencies = list(self.latencies)
        return {
            "requests": dict(sorted(self.requests.items())),
            "texts": self.texts,
            "batches": self.batches,
            "batched_texts": self.batch_texts,
            "mean_batch_texts": self.batch_texts / self.batches if self.batches else 0.0,
            "mean_batch_requests": self.batch_requests / self.batches if self.batches else 0.0,
            "largest_batch_texts": self.largest_batch_texts,
            "latency_ms": {
                "requests": len(latencies),
                "p50": percentile(latencies, 0.5) * 1000,
                "p99": percentile(latencies, 0.99) * 1000,
                "max": max(latencies, default=0.0) * 1000,
            },
        }

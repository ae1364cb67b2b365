"""The local engine: the pipeline in this process, or in worker processes.

`nlp.pipe(n_process=...)` forks by default, and a forked process that
inherits torch's threads can hang; it also hands out texts with no bound on
how many are in flight. Here workers are started with `spawn` (a fresh
interpreter, which cannot inherit a lock held by another thread), each loads
the pipeline once and shares the CPU cores with the others, and at most two
chunks per worker are in flight, so memory stays bounded however large the
input is. Rows come back in input order.
"""

import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Deque, Iterator, List, Optional, Sequence, Union

from spacy.language import Language

from .annotator import ModelIdentity, Row, annotate_records, load_pipeline
from .corpus import Record, Shard, ShardEnd, read_chunks
from .settings import AnnotateError, Settings

# the pipeline of a worker process, loaded once by its initializer
_worker_nlp: Optional[Language] = None
_worker_settings: Optional[Settings] = None


def _start_worker(model: str, identity: ModelIdentity, settings: Settings, threads: int) -> None:
    global _worker_nlp, _worker_settings
    import torch
    from threadpoolctl import threadpool_limits

    # the workers share the cores: without this each would start a thread per core
    torch.set_num_threads(threads)
    threadpool_limits(threads)
    _worker_nlp = load_pipeline(model, identity, settings)
    _worker_settings = settings


def _annotate_in_worker(records: List[Record]) -> List[Row]:
    return annotate_records(_worker_nlp, records, _worker_settings)


def local_stream(
    shards: Sequence[Shard], model: str, identity: ModelIdentity, settings: Settings, workers: int = 1, gpus: float = 0
) -> Iterator[Union[Row, ShardEnd]]:
    """Every shard's rows in order, each shard followed by its ShardEnd."""
    if gpus and workers > 1:
        raise AnnotateError(
            "the local engine runs a GPU pipeline in one process: use workers 1, or the ray engine for several GPUs"
        )
    items = (item for shard in shards for item in read_chunks(shard, settings))
    if workers == 1:
        nlp = load_pipeline(model, identity, settings, gpu=gpus > 0)
        for item in items:
            if isinstance(item, ShardEnd):
                yield item
            else:
                yield from annotate_records(nlp, item, settings)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=_start_worker,
        initargs=(model, identity, settings, threads),
    )
    in_flight: Deque[Union[Future, ShardEnd]] = deque()

    def oldest() -> List[Union[Row, ShardEnd]]:
        item = in_flight.popleft()
        return [item] if isinstance(item, ShardEnd) else item.result()

    try:
        for item in items:
            in_flight.append(item if isinstance(item, ShardEnd) else pool.submit(_annotate_in_worker, item))
            if len(in_flight) > 2 * workers:
                yield from oldest()
        while in_flight:
            yield from oldest()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

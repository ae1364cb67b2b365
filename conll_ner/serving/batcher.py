"""Micro-batching: the texts of concurrent requests go through the pipeline
in one nlp.pipe call, and each request gets its own texts' results.

A transformer on a CPU computes a batch of 32 sentences several times
faster than 32 batches of one, but a server gets texts one request at a
time. One worker task takes the first waiting request, gathers those that
arrive within `max_wait` after it (never more than `max_batch_texts` texts;
a larger request goes alone, a request that would overflow the batch waits
for the next one) and annotates them in a thread, so the event loop keeps
accepting requests meanwhile; whatever queued up during a batch forms the
next one at once. The annotate code (annotator.annotate_records) runs each
batch: long texts in pieces, one memory zone per batch, and a batch that
fails is annotated text by text, so a text that breaks the pipeline fails
its own request only. A text's entities do not depend on the texts it
shares a batch with (the transformer's CPU runtime guarantees it; the
tests check it).
"""

import asyncio
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from ..inference.annotator import Row
from .metrics import Metrics


@dataclass
class Job:
    texts: Sequence[str]
    future: "asyncio.Future[List[Row]]"


class MicroBatcher:
    """Gathers the texts of concurrent `submit` calls into batches for
    `annotate` (texts -> one Row each, in order), which runs in a thread."""

    def __init__(
        self,
        annotate: Callable[[List[str]], List[Row]],
        max_batch_texts: int,
        max_wait: float,
        metrics: Optional[Metrics] = None,
    ) -> None:
        self.annotate = annotate
        self.max_batch_texts = max_batch_texts
        self.max_wait = max_wait
        self.metrics = metrics or Metrics()
        self.queue: "asyncio.Queue[Job]" = asyncio.Queue()
        self.arrived = asyncio.Event()
        # a request that did not fit into the last batch: the next one starts with it
        self.held: Optional[Job] = None
        self.worker: Optional["asyncio.Task[None]"] = None

    def start(self) -> None:
        self.worker = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Stop the worker; requests still waiting fail (uvicorn lets the
        requests in flight finish before it stops the application)."""
        if self.worker is not None:
            self.worker.cancel()
            await asyncio.gather(self.worker, return_exceptions=True)
        pending = ([self.held] if self.held else []) + [self.queue.get_nowait() for _ in range(self.queue.qsize())]
        for job in pending:
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))

    async def submit(self, texts: Sequence[str]) -> List[Row]:
        """The rows of `texts`, in order, annotated with other requests' texts."""
        job = Job(texts, asyncio.get_running_loop().create_future())
        self.queue.put_nowait(job)
        self.arrived.set()
        return await job.future

    async def next_batch(self) -> List[Job]:
        loop = asyncio.get_running_loop()
        first, self.held = self.held or await self.queue.get(), None
        batch, size = [first], len(first.texts)
        deadline = loop.time() + self.max_wait
        while size < self.max_batch_texts:
            try:
                job = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self.arrived.clear()
                try:
                    await asyncio.wait_for(self.arrived.wait(), remaining)
                except asyncio.TimeoutError:
                    break
                continue
            if size + len(job.texts) > self.max_batch_texts:
                self.held = job
                break
            batch.append(job)
            size += len(job.texts)
        return batch

    async def run(self) -> None:
        while True:
            batch = await self.next_batch()
            texts = [text for job in batch for text in job.texts]
            self.metrics.record_batch(len(batch), len(texts))
            try:
                rows = await asyncio.to_thread(self.annotate, texts)
            except Exception as err:  # the annotate code catches the pipeline's errors: this is a bug
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(err)
                continue
            start = 0
            for job in batch:
                # a caller that went away has cancelled its future
                if not job.future.done():
                    job.future.set_result(rows[start : start + len(job.texts)])
                start += len(job.texts)

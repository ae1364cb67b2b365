"""Annotate a large corpus with a trained pipeline: one output shard per
input file, resumable, on one machine or a Ray cluster.

spaCy's own tools fall short at this scale: `spacy apply` holds every Doc in
one DocBin and writes once at the end, and `nlp.pipe(n_process=...)` forks
(which can hang with torch) and copies the model into every process. Here
documents stream from the inputs through an engine (`local`: this process or
spawned workers; `ray`: Ray Data actors) to shard files that are renamed
into place when complete, and a manifest in the output folder lets a rerun
skip what is done and refuse to mix in another model's output.
"""

import itertools
import os
import time
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

from tqdm import tqdm

from ..files import atomic_path, remove_leftover_temporaries
from .annotator import Row, model_identity
from .corpus import Shard, ShardEnd, find_shards
from .local_engine import local_stream
from .manifest import OutputFolder, manifest_for
from .output import open_writer
from .ray_engine import ray_stream
from .settings import ENGINES, OUTPUT_FORMATS, AnnotateError, Settings


class ShardFailed(Exception):
    """A shard that could not be read to its end; its output is not written."""


@dataclass
class Totals:
    shards_done: int = 0
    documents_done: int = 0
    documents_failed: int = 0
    words: int = 0
    # batches that failed and were annotated text by text (annotator.pipe_safely)
    retried_batches: int = 0
    failed_shards: List[str] = field(default_factory=list)
    # when the first row arrived (time.perf_counter()): the engine's start-up
    # (processes, Ray, model loading) and its first chunk lie before it
    first_row_at: Optional[float] = None


def write_shards(
    folder: OutputFolder,
    shards: List[Shard],
    stream: Iterable[Union[Row, ShardEnd]],
    output_format: str,
    show_progress: bool = True,
) -> Totals:
    """Write the engine's rows, shard by shard, each to a temporary file
    renamed into place and logged when the shard's end arrives. A shard
    whose reading failed leaves nothing behind and the others go on."""
    by_index = {shard.index: shard for shard in shards}
    totals = Totals()
    started = time.perf_counter()
    bar = tqdm(unit="doc", desc="Annotating", disable=not show_progress, dynamic_ncols=True)
    try:
        for number, (index, items) in enumerate(itertools.groupby(stream, key=attrgetter("shard")), start=1):
            if index not in by_index:
                raise RuntimeError(f"the engine returned the rows of shard {index} out of order")
            shard = by_index.pop(index)
            bar.set_description(f"Annotating shard {number}/{len(shards)}")
            path = folder.path / shard.output
            remove_leftover_temporaries(path)
            counts = Totals()
            end = None
            try:
                with atomic_path(path) as tmp, open_writer(tmp, output_format) as writer:
                    for item in items:
                        if isinstance(item, ShardEnd):
                            end = item
                            break
                        writer.write(item)
                        if totals.first_row_at is None:
                            totals.first_row_at = time.perf_counter()
                        counts.documents_done += item.error is None
                        counts.documents_failed += item.error is not None
                        counts.words += item.words
                        counts.retried_batches += item.retried_batches
                        bar.update(1)
                        words_per_second = (totals.words + counts.words) / (time.perf_counter() - started)
                        bar.set_postfix_str(f"{words_per_second:,.0f} words/s", refresh=False)
                    if end is None:
                        raise RuntimeError(f"the engine's rows of {shard.path} stopped before the shard's end")
                    if end.error is not None:
                        raise ShardFailed(end.error)
            except ShardFailed as err:
                totals.failed_shards.append(str(err))
                continue
            folder.record(shard, counts.documents_done + counts.documents_failed, counts.documents_failed, counts.words)
            totals.shards_done += 1
            totals.documents_done += counts.documents_done
            totals.documents_failed += counts.documents_failed
            totals.words += counts.words
            totals.retried_batches += counts.retried_batches
    finally:
        bar.close()
    return totals


def annotate(
    model: Union[str, Path],
    inputs: Union[str, Path],
    output: Union[str, Path],
    *,
    engine: str = "local",
    output_format: str = "jsonl",
    text_field: str = "text",
    id_field: str = "id",
    batch_size: int = 32,
    workers: int = 1,
    gpus: float = 0,
    max_chars: int = 10_000,
    max_text_chars: int = 10_000_000,
    resume: bool = True,
    ray_address: str = "",
    show_progress: bool = True,
) -> Dict[str, object]:
    """Annotate every document of `inputs` (a file, folder or glob of JSONL,
    plain text or parquet files) with the pipeline `model` (a folder or an
    installed package) into one shard per input file in `output`.

    engine: "local" (`workers` processes; a GPU pipeline with gpus > 0 in
    one) or "ray" (`workers` actors with `gpus` GPUs each, on the cluster at
    `ray_address`, or a local Ray instance when it is empty). With resume,
    shards done before are skipped; without, an earlier run's output is
    replaced. Returns the run's summary: shards and documents done, skipped
    and failed, words, batches that failed and were retried text by text, seconds, documents and words per second (this run's,
    model loading included), and the seconds until the first document came
    back.
    """
    started = time.perf_counter()
    if engine not in ENGINES:
        raise AnnotateError(f"unknown engine {engine!r}: use {' or '.join(ENGINES)}")
    if output_format not in OUTPUT_FORMATS:
        raise AnnotateError(f"unknown output format {output_format!r}: use {' or '.join(OUTPUT_FORMATS)}")
    if workers < 1 or gpus < 0:
        raise AnnotateError(f"workers must be at least 1 and gpus at least 0, not {workers} and {gpus}")
    settings = Settings(text_field, id_field, batch_size, max_chars, max_text_chars)
    output = Path(output)
    shards = find_shards(inputs, output_format, output)
    identity = model_identity(model)
    manifest = manifest_for(identity, os.path.abspath(str(inputs)), output_format, settings.recorded())
    folder = OutputFolder.open(output, manifest, resume)
    pending, skipped = folder.split(shards)
    totals = Totals()
    if pending:
        if engine == "local":
            stream = local_stream(pending, model, identity, settings, workers, gpus)
        else:
            stream = ray_stream(pending, model, identity, settings, workers, gpus, ray_address)
        totals = write_shards(folder, pending, stream, output_format, show_progress)
    finished = time.perf_counter()
    seconds = finished - started
    documents = totals.documents_done + totals.documents_failed
    return {
        "model": identity.name,
        "version": identity.version,
        "fingerprint": identity.fingerprint,
        "output": str(output),
        "engine": engine,
        "shards": len(shards),
        "shards_done": totals.shards_done,
        "shards_skipped": len(skipped),
        "shards_failed": len(totals.failed_shards),
        "failed_shards": totals.failed_shards,
        "documents_done": totals.documents_done,
        "documents_failed": totals.documents_failed,
        "documents_skipped": sum(folder.done[shard.output].documents for shard in skipped),
        "words": totals.words,
        "retried_batches": totals.retried_batches,
        "seconds": seconds,
        "documents_per_second": documents / seconds,
        "words_per_second": totals.words / seconds,
        "first_output_seconds": (totals.first_row_at or finished) - started,
    }

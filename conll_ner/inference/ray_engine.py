"""The ray engine: Ray Data reads the shards and annotates them on a pool of
actors, each of which loads the pipeline once, on one machine or a cluster.

Shards are read by Ray tasks with the local engine's reader (so broken lines
give the same error rows), in blocks small enough that the chunks of one
large shard are spread over every actor; chunks go through `map_batches` to
the `Annotator` class (a pool of `workers` actors, `num_gpus` each), and the rows
stream back to this process in input order, which writes the shards as the
local engine does: one writer, one manifest. Only ids, entities and errors
come back, not the texts. On a cluster every node needs this project's
requirements (`requirements-ray.txt`), the pipeline (an installed package,
or a folder at the same path on every node) and the input files at the same
paths.
"""

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Union

from .annotator import Entity, ModelIdentity, Row, annotate_records, load_pipeline
from .corpus import Record, Shard, ShardEnd, read_chunks
from .settings import AnnotateError, Settings

# Ray Data's blocks (128 MiB by default) would put a whole shard in one block
# and on one actor
BLOCK_BYTES = 1 << 20
INSTALL_HINT = "pip install -r requirements-ray.txt (or pip install 'ray[data]>=2.40')"


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise AnnotateError(f"the ray engine needs Ray, which is not installed ({err}): {INSTALL_HINT}") from err
    return ray


def transport_schema():
    """Records, rows and shard ends all travel as items of this schema; ids
    (any JSON value) and entities as JSON."""
    import pyarrow as pa

    return pa.schema(
        [
            ("shard", pa.int64()),
            ("line", pa.int64()),
            ("id", pa.string()),
            ("text", pa.string()),
            ("error", pa.string()),
            ("end", pa.bool_()),
            ("entities", pa.string()),
            ("words", pa.int64()),
            ("retried_batches", pa.int64()),
        ]
    )


def to_table(items: List[Dict[str, Any]]):
    import pyarrow as pa

    return pa.Table.from_pylist(items, schema=transport_schema())


def encode(item: Union[Record, Row, ShardEnd]) -> Dict[str, Any]:
    if isinstance(item, ShardEnd):
        return {"shard": item.shard, "error": item.error, "end": True}
    encoded = {
        "shard": item.shard,
        "line": item.line,
        "id": json.dumps(item.id, default=str),
        "error": item.error,
        "end": False,
    }
    if isinstance(item, Record):
        return {**encoded, "text": item.text}
    return {
        **encoded,
        "entities": json.dumps([asdict(entity) for entity in item.entities]),
        "words": item.words,
        "retried_batches": item.retried_batches,
    }


def decode_record(item: Dict[str, Any]) -> Record:
    return Record(item["shard"], item["line"], json.loads(item["id"]), item["text"], item["error"])


def decode_output(item: Dict[str, Any]) -> Union[Row, ShardEnd]:
    if item["end"]:
        return ShardEnd(item["shard"], item["error"])
    entities = [Entity(**entity) for entity in json.loads(item["entities"] or "[]")]
    return Row(
        item["shard"],
        item["line"],
        json.loads(item["id"]),
        entities,
        item["error"],
        item["words"],
        item["retried_batches"],
    )


def read_shards(batch, settings: Settings) -> Iterator[Any]:
    """Ray task: the records of the shards in `batch`, chunk by chunk, each
    shard followed by its end."""
    for fields in batch.to_pylist():
        shard = Shard(fields["index"], Path(fields["path"]), fields["source"], fields["output"])
        for item in read_chunks(shard, settings):
            yield to_table([encode(item)] if isinstance(item, ShardEnd) else [encode(record) for record in item])


class Annotator:
    """Ray actor: loads the pipeline once, on its GPU if Ray gave it one, and
    annotates chunks with the local engine's code; shard ends pass through."""

    def __init__(self, model: str, identity: ModelIdentity, settings: Settings) -> None:
        import ray

        self.nlp = load_pipeline(model, identity, settings, gpu=bool(ray.get_gpu_ids()))
        self.settings = settings

    def __call__(self, batch):
        items = batch.to_pylist()
        records = [decode_record(item) for item in items if not item["end"]]
        rows = iter(annotate_records(self.nlp, records, self.settings))
        return to_table([item if item["end"] else encode(next(rows)) for item in items])


def ray_stream(
    shards: Sequence[Shard],
    model: str,
    identity: ModelIdentity,
    settings: Settings,
    workers: int = 1,
    gpus: float = 0,
    address: str = "",
) -> Iterator[Union[Row, ShardEnd]]:
    """Every shard's rows in order, each shard followed by its ShardEnd.
    Joins the cluster at `address` ("auto": the one this machine belongs
    to), or starts a local Ray instance when it is empty; a Ray instance
    that is already running in this process is used as it is."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address or None)
    context = ray.data.DataContext.get_current()
    saved = context.execution_options.preserve_order, context.enable_progress_bars, context.target_max_block_size
    try:
        # rows must come back in input order to be written shard by shard;
        # our own progress bar counts documents and words; small blocks
        # spread the chunks of one large shard over all actors
        context.execution_options.preserve_order, context.enable_progress_bars = True, False
        context.target_max_block_size = BLOCK_BYTES
        dataset = ray.data.from_items(
            [{"index": s.index, "path": str(s.path), "source": s.source, "output": s.output} for s in shards],
            override_num_blocks=len(shards),
        )
        # reading reserves no CPU: it is then not fused into the actors (whose
        # pool could not share one shard), and actors that hold every CPU
        # cannot starve it
        dataset = dataset.map_batches(
            read_shards, batch_size=1, batch_format="pyarrow", fn_kwargs={"settings": settings}, num_cpus=0
        )
        dataset = dataset.map_batches(
            Annotator,
            batch_size=settings.chunk_docs,
            batch_format="pyarrow",
            concurrency=workers,
            num_gpus=gpus or None,
            fn_constructor_kwargs={"model": str(model), "identity": identity, "settings": settings},
        )
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            for item in batch.to_pylist():
                yield decode_output(item)
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars, context.target_max_block_size = saved
        if started:
            ray.shutdown()

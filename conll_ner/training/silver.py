"""Silver training data from a finished annotation run: one DocBin per
annotation shard, in a folder that spaCy's Corpus reads file by file.

The annotate engine's rows hold character offsets, not tokens. A silver Doc
is the input text, read again with the engine's own reader (so records and
rows agree one for one, in input order), tokenized by the teacher's
tokenizer, with the row's entities on it: the tokens the teacher itself saw,
so every entity lands on token boundaries. A text longer than max_chars
becomes one Doc per piece, cut as the engine cut it (it annotated the pieces
independently, so no entity crosses a cut). Error rows (broken lines, texts
the pipeline failed on) and empty texts give no Doc and are counted.

Each silver file is built from one shard in one memory zone and written
atomically, and `shards.jsonl` beside the files records what each was built
from (the teacher, the settings and the annotation shard's record), so a
rerun rebuilds only the files whose annotation shard changed. Memory grows
with the largest shard's silver Docs, never with the corpus.
"""

import itertools
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple, Union

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc, Span
from tqdm import tqdm

from ..files import append_line, read_json_lines, remove_leftover_temporaries
from ..inference.annotator import pipeline_folder
from ..inference.corpus import Record, Shard, find_shards, read_records
from ..inference.long_texts import split_text
from ..inference.manifest import DONE_FILE, MANIFEST_FILE, ShardRecord, read_done
from ..inference.settings import Settings
from .distillation import DistillationError, write_docs

SILVER_LOG = "shards.jsonl"
SILVER_SUFFIX = ".spacy"


@dataclass
class SilverStats:
    """What a silver corpus (or one of its files) holds, and what its
    annotation rows gave no Doc or entity."""

    docs: int = 0
    words: int = 0
    entities: Dict[str, int] = field(default_factory=dict)
    # rows the engine could not annotate (broken lines, texts over
    # max_text_chars or that broke the pipeline): no Doc
    errors: int = 0
    # empty or whitespace-only texts: no Doc
    empty: int = 0
    # texts over max_chars, one Doc per piece
    cut_texts: int = 0
    # entities not on the teacher's token boundaries: their tokens are left
    # unannotated (neither entity nor O), so the student learns nothing there
    misaligned: int = 0

    def add(self, other: "SilverStats") -> None:
        for name in ("docs", "words", "errors", "empty", "cut_texts", "misaligned"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for label, count in other.entities.items():
            self.entities[label] = self.entities.get(label, 0) + count
        self.entities = dict(sorted(self.entities.items()))

    def to_dict(self) -> Dict[str, object]:
        return {**asdict(self), "entities_total": sum(self.entities.values())}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "SilverStats":
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass
class SilverRecord:
    """A line of the silver log: a silver file and what it was built from."""

    silver: str
    built_from: Dict[str, Any]
    silver_bytes: int
    stats: Dict[str, Any]


@dataclass
class SilverSummary:
    """A silver corpus's counts, and how many of its files this run built
    and how many it kept from an earlier run."""

    stats: SilverStats
    shards: int
    built: int
    reused: int


def teacher_tokenizer(teacher: Union[str, Path]) -> Language:
    """The teacher with every component excluded: its tokenizer and vocab,
    without loading any weights."""
    folder = pipeline_folder(teacher)
    components = srsly.read_json(folder / "meta.json").get("components", [])
    return spacy.load(folder, exclude=components)


def silver_name(shard: Shard) -> str:
    return Path(shard.output).with_suffix(SILVER_SUFFIX).as_posix()


def remove_stale(silver: Path, keep: Set[str]) -> None:
    """Remove the silver files that belong to no current shard (an input file
    removed since), which spacy.Corpus would otherwise train on."""
    for path in list(silver.rglob(f"*{SILVER_SUFFIX}")):
        if path.relative_to(silver).as_posix() not in keep:
            path.unlink()


def clear_silver(silver: Path) -> None:
    """An empty silver folder (the student learns from gold alone); it stays,
    as the distill-train step depends on it."""
    silver.mkdir(parents=True, exist_ok=True)
    remove_stale(silver, set())
    (silver / SILVER_LOG).unlink(missing_ok=True)


def entity_spans(
    doc: Doc, entities: List[Dict[str, Any]], offset: int, stats: SilverStats
) -> Tuple[List[Span], List[Span]]:
    """The entities (offsets in the whole text) as spans of a piece's Doc,
    and the tokens of those not on token boundaries, to be left missing."""
    spans: List[Span] = []
    missing: Set[int] = set()
    for entity in entities:
        start, end = entity["start_char"] - offset, entity["end_char"] - offset
        span = doc.char_span(start, end, label=entity["label"])
        if span is None:
            stats.misaligned += 1
            covering = doc.char_span(start, end, alignment_mode="expand")
            missing.update(range(covering.start, covering.end) if covering is not None else ())
        else:
            spans.append(span)
    kept = [span for span in spans if not missing.intersection(range(span.start, span.end))]
    return kept, [doc[i : i + 1] for i in sorted(missing)]


def silver_docs(
    nlp: Language, pairs: Iterator[Tuple[Record, Dict[str, Any]]], settings: Settings, stats: SilverStats
) -> Iterator[Doc]:
    """The silver Docs of a shard's records and annotation rows; `stats`
    counts what gives no Doc or entity (the Docs themselves are counted as
    they are written)."""
    for record, row in pairs:
        if row["error"] is not None:
            stats.errors += 1
            continue
        if record.text is None or not record.text.strip():
            stats.empty += 1
            continue
        pieces = split_text(record.text, settings.max_chars)
        stats.cut_texts += len(pieces) > 1
        # pieces are consecutive: one pass over the entities in text order
        entities = iter(sorted(row["entities"], key=lambda entity: entity["start_char"]))
        entity = next(entities, None)
        for start, end in pieces:
            inside = []
            while entity is not None and entity["start_char"] < end:
                if entity["end_char"] <= end:
                    inside.append(entity)
                else:  # across the cut, which the engine cannot give
                    stats.misaligned += 1
                entity = next(entities, None)
            piece = record.text[start:end]
            if not piece.strip():
                continue
            doc = nlp.make_doc(piece)
            spans, missing = entity_spans(doc, inside, start, stats)
            doc.set_ents(spans, missing=missing, default="outside")
            yield doc


def annotation_rows(path: Path) -> Iterator[Dict[str, Any]]:
    with path.open(encoding="utf8") as lines:
        for line in lines:
            yield json.loads(line)


def paired(shard: Shard, rows_path: Path, settings: Settings) -> Iterator[Tuple[Record, Dict[str, Any]]]:
    """A shard's records and their rows, one for one; a different count means
    the annotations are not those of this input."""
    missing = object()
    for number, (record, row) in enumerate(
        itertools.zip_longest(read_records(shard, settings), annotation_rows(rows_path), fillvalue=missing), start=1
    ):
        if record is missing or row is missing:
            raise DistillationError(
                f"{rows_path}: row {number} has no document in {shard.path} or the other way round: the "
                "annotations are not those of this input; rerun the step to annotate it again"
            )
        yield record, row


def build_shard(nlp: Language, shard: Shard, rows_path: Path, target: Path, settings: Settings) -> SilverStats:
    """The silver DocBin of one shard, built in one memory zone (the strings
    its Docs add to the vocab are freed after it) and written atomically."""
    stats = SilverStats()
    remove_leftover_temporaries(target)
    with nlp.memory_zone():
        written = write_docs(silver_docs(nlp, paired(shard, rows_path, settings), settings, stats), target)
    stats.docs, stats.words, stats.entities = written.docs, written.words, written.entities
    return stats


def read_log(silver: Path) -> Dict[str, SilverRecord]:
    """The last record of each silver file."""
    log: Dict[str, SilverRecord] = {}
    for line in read_json_lines(silver / SILVER_LOG):
        try:
            record = SilverRecord(**line)
        except TypeError:
            continue
        log[record.silver] = record
    return log


def is_current(record: Optional[SilverRecord], built_from: Dict[str, Any], path: Path) -> bool:
    return (
        record is not None
        and record.built_from == built_from
        and path.is_file()
        and path.stat().st_size == record.silver_bytes
    )


def build_silver(
    annotations: Union[str, Path], silver: Union[str, Path], nlp: Language, show_progress: bool = True
) -> SilverSummary:
    """Silver DocBins of every shard of the finished annotation run in
    `annotations` (an annotate output folder in JSONL), one per shard, into
    `silver`, with `nlp`'s tokenizer (the teacher's: teacher_tokenizer).
    The input, settings and teacher come from the run's manifest. A silver
    file whose annotation shard, teacher and settings are those it was built
    from is kept; silver files of shards no longer in the input are removed."""
    annotations, silver = Path(annotations), Path(silver)
    manifest = json.loads((annotations / MANIFEST_FILE).read_text(encoding="utf8"))
    if manifest["format"] != "jsonl":
        raise DistillationError(
            f"{annotations} holds {manifest['format']} annotations; silver data is built from jsonl"
        )
    settings = Settings(**manifest["settings"])
    # pieces are at most max_chars long, as the engine's pipeline allowed them
    nlp.max_length = max(nlp.max_length, settings.max_chars)
    shards = find_shards(manifest["input"], manifest["format"], annotations)
    done = read_done(annotations / DONE_FILE)
    silver.mkdir(parents=True, exist_ok=True)
    remove_stale(silver, {silver_name(shard) for shard in shards})
    log = read_log(silver)
    summary = SilverSummary(SilverStats(), len(shards), 0, 0)
    for shard in tqdm(
        shards, unit="shard", desc="Building silver shards", disable=not show_progress, dynamic_ncols=True
    ):
        record: Optional[ShardRecord] = done.get(shard.output)
        rows_path = annotations / shard.output
        if record is None or not rows_path.is_file() or rows_path.stat().st_size != record.output_bytes:
            raise DistillationError(
                f"{rows_path} is not a finished annotation shard of {shard.path}: rerun the step to annotate it"
            )
        built_from = {"model": manifest["model"], "settings": manifest["settings"], "annotations": asdict(record)}
        name = silver_name(shard)
        target = silver / name
        previous = log.get(name)
        if is_current(previous, built_from, target):
            stats = SilverStats.from_dict(previous.stats)
            summary.reused += 1
        else:
            stats = build_shard(nlp, shard, rows_path, target, settings)
            line = SilverRecord(name, built_from, target.stat().st_size, stats.to_dict())
            append_line(silver / SILVER_LOG, json.dumps(asdict(line)).encode("utf8"))
            summary.built += 1
        summary.stats.add(stats)
    return summary

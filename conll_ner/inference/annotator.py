"""Annotating records with a pipeline: the work that every engine's workers
do, the same way, so that engines differ only in where it runs."""

import hashlib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc

from .corpus import Record
from .long_texts import split_text
from .settings import AnnotateError, Settings


@dataclass(frozen=True)
class ModelIdentity:
    """Which pipeline wrote an output: its name and version, and a digest of
    its files, which tells apart two trainings that share both."""

    name: str
    version: str
    fingerprint: str

    def describe(self) -> str:
        return f"{self.name} {self.version} (fingerprint {self.fingerprint[:12]})"


@dataclass
class Entity:
    start_char: int
    end_char: int
    label: str
    text: str


@dataclass
class Row:
    """The output of one document: its entities, or the reason it has none."""

    shard: int
    line: int
    id: Any
    entities: List[Entity] = field(default_factory=list)
    error: Optional[str] = None
    # tokens annotated, for words per second; not written
    words: int = 0
    # batches that failed and were retried text by text from this row's text
    # on, for the summary: a pipeline that breaks on some batches is slow,
    # not wrong, so only the count shows it; not written
    retried_batches: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return {"id": self.id, "entities": [asdict(entity) for entity in self.entities], "error": self.error}


def pipeline_folder(model: Union[str, Path]) -> Path:
    """The folder of a pipeline given as a path or an installed package's
    name, without loading it."""
    path = Path(model)
    if path.is_dir():
        if not (path / "meta.json").is_file():
            raise AnnotateError(f"{path} is not a spaCy pipeline: it has no meta.json")
        return path
    if spacy.util.is_package(str(model)):
        return spacy.util.get_package_path(str(model))
    raise AnnotateError(
        f"cannot find the pipeline {model!r}: give a pipeline folder (e.g. training/<run>/model-best) "
        "or the name of an installed pipeline package"
    )


def model_identity(model: Union[str, Path]) -> ModelIdentity:
    """Name, version and fingerprint (SHA-256 of every file's path and
    bytes, caches aside) of a pipeline, read from its folder."""
    folder = pipeline_folder(model)
    meta = srsly.read_json(folder / "meta.json")
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode("utf8") + b"\0")
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    return ModelIdentity(f"{meta['lang']}_{meta['name']}", str(meta["version"]), digest.hexdigest())


def load_pipeline(model: Union[str, Path], identity: ModelIdentity, settings: Settings, gpu: bool = False) -> Language:
    """Load the pipeline in a worker; refuse one that is not the pipeline the
    run started with (another version installed on one node of a cluster)."""
    if gpu:
        spacy.require_gpu(0)
    nlp = spacy.load(model)
    name, version = f"{nlp.meta['lang']}_{nlp.meta['name']}", str(nlp.meta["version"])
    if (name, version) != (identity.name, identity.version):
        raise AnnotateError(f"{model} loads as {name} {version} here, but the run annotates with {identity.describe()}")
    # pieces are at most max_chars long, so spaCy's own limit must not be lower
    nlp.max_length = max(nlp.max_length, settings.max_chars)
    return nlp


def pipe_safely(nlp: Language, texts: Sequence[str], batch_size: int) -> Iterator[Tuple[Union[Doc, Exception], bool]]:
    """The Doc of each text, in order, streamed so that a chunk's Docs (and a
    transformer's activations in them) are not all held at once. If a batch
    fails (a text that breaks a component, memory running out), its texts
    are retried one by one and those that fail again give their exception;
    then batching resumes. Each result comes with whether a failed batch was
    retried from its text on, so that the run can count them."""
    done = 0
    while done < len(texts):
        try:
            for doc in nlp.pipe(texts[done:], batch_size=batch_size):
                done += 1
                yield doc, False
        except Exception:
            for position, text in enumerate(texts[done : done + batch_size]):
                done += 1
                try:
                    result: Union[Doc, Exception] = nlp(text)
                except Exception as err:
                    result = err
                yield result, position == 0


def annotate_records(nlp: Language, records: Sequence[Record], settings: Settings) -> List[Row]:
    """One row per record, in order. Empty texts give rows without entities
    and texts over max_text_chars error rows, without reaching the pipeline;
    texts over max_chars are annotated in pieces, whose entities are put back
    at their offsets in the whole text. The chunk is annotated in one memory
    zone, so the strings its Docs add to the vocab are freed when it is done."""
    rows = [Row(record.shard, record.line, record.id, error=record.error) for record in records]
    pieces: List[Tuple[int, int, str]] = []  # (row, offset of the piece, piece)
    for index, record in enumerate(records):
        if record.error is not None or not record.text.strip():
            continue
        if len(record.text) > settings.max_text_chars:
            rows[index].error = (
                f"{record.id}: text of {len(record.text)} characters is over the limit of "
                f"{settings.max_text_chars} (max_text_chars), not annotated"
            )
            continue
        pieces.extend(
            (index, start, record.text[start:end]) for start, end in split_text(record.text, settings.max_chars)
        )
    failures: Dict[int, Exception] = {}
    entities: Dict[int, List[Entity]] = defaultdict(list)
    with nlp.memory_zone():
        docs = pipe_safely(nlp, [piece for _, _, piece in pieces], settings.batch_size)
        for (index, offset, _), (doc, retried_from_here) in zip(pieces, docs):
            rows[index].retried_batches += retried_from_here
            if isinstance(doc, Exception):
                failures.setdefault(index, doc)
                continue
            rows[index].words += len(doc)
            entities[index].extend(
                Entity(ent.start_char + offset, ent.end_char + offset, ent.label_, ent.text) for ent in doc.ents
            )
    for index, row in enumerate(rows):
        if index in failures:
            row.error = f"{row.id}: the pipeline failed on this text: {failures[index]!r}"
        elif row.error is None:
            row.entities = entities[index]
    return rows

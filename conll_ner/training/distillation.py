"""Distillation through silver data: a teacher pipeline annotates unlabelled
text, and a faster student trains on the gold corpus plus that silver.

spaCy 3.8 has no soft-target distillation (`Language.distill` exists only in
the v4 pre-releases) and its `ner` trains from annotations, so the teacher's
knowledge reaches the student as entities. Entities travel as label names in
DocBins, never as label indices: a teacher whose label ids are ordered
differently from the data (the classic cause of distilled CoNLL models that
give every entity a wrong type) cannot happen here, and a teacher whose label
set differs from the gold one is refused before anything is annotated.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, Union

from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab
from tqdm import tqdm

from ..files import write_atomically
from ..inference.corpus import JSONL_SUFFIXES, TEXT_SUFFIXES

DOCBIN_SUFFIXES = (".spacy",)
UNLABELLED_SUFFIXES = TEXT_SUFFIXES + JSONL_SUFFIXES + DOCBIN_SUFFIXES
# what the distill-data step writes into the student's training folder
GOLD_FILE = "gold.spacy"
SILVER_FILE = "silver.spacy"
SUMMARY_FILE = "distillation.json"


class DistillationError(ValueError):
    """A teacher, student or input that cannot give a correct silver corpus."""


def unlabelled_files(path: Union[str, Path]) -> List[Path]:
    """The files of a file or folder of unlabelled text, in a stable order."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in UNLABELLED_SUFFIXES)
        if not files:
            raise DistillationError(f"{path} holds no {', '.join(UNLABELLED_SUFFIXES)} files")
        return files
    raise DistillationError(f"{path} does not exist")


def read_unlabelled(path: Union[str, Path], vocab: Vocab, text_field: str = "text") -> Iterator[Union[str, Doc]]:
    """Texts and Docs of a file or folder: plain text (one document per line),
    JSONL (`text_field` of each line) or DocBin (its Docs, entities removed:
    a labelled corpus can be used as unlabelled text). Blank lines are
    skipped; a broken line stops with its file and line number, since silver
    data built from a half-read corpus would be silently smaller."""
    for file in unlabelled_files(path):
        if file.suffix in DOCBIN_SUFFIXES:
            for doc in DocBin().from_disk(file).get_docs(vocab):
                doc.set_ents([], default="missing")
                yield doc
            continue
        with file.open(encoding="utf8") as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    if file.suffix in JSONL_SUFFIXES:
                        if not line.strip():
                            continue
                        record = json.loads(line)
                        text = record[text_field] if isinstance(record, dict) else None
                        if not isinstance(text, str):
                            raise DistillationError(f"no {text_field!r} string field")
                    else:
                        text = line.rstrip("\r\n")
                except (json.JSONDecodeError, KeyError, DistillationError) as err:
                    raise DistillationError(f"{file}:{number}: {err}") from err
                if text.strip():
                    yield text


def count_unlabelled(path: Union[str, Path]) -> int:
    """Documents in the input, for the progress bar's total (lines are an upper bound for text files)."""
    total = 0
    for file in unlabelled_files(path):
        if file.suffix in DOCBIN_SUFFIXES:
            total += len(DocBin().from_disk(file))
        else:
            with file.open("rb") as lines:
                total += sum(1 for line in lines if line.strip())
    return total


def ner_labels(nlp: Language) -> Set[str]:
    if "ner" not in nlp.pipe_names:
        raise DistillationError(f"the teacher has no ner component (its pipeline: {', '.join(nlp.pipe_names)})")
    return set(nlp.get_pipe("ner").labels)


def docbin_labels(path: Union[str, Path], vocab: Vocab) -> Set[str]:
    return {ent.label_ for doc in DocBin().from_disk(path).get_docs(vocab) for ent in doc.ents}


def check_teacher(teacher: Language, gold_labels: Set[str], student_lang: str) -> None:
    """Refuse a teacher that would give the student other labels than the gold
    data's, or text in another language than the student's."""
    teacher_labels = ner_labels(teacher)
    if teacher_labels != gold_labels:
        raise DistillationError(
            f"the teacher's entity labels {sorted(teacher_labels)} differ from the gold data's {sorted(gold_labels)}: "
            "a student trained on both would learn two label sets; use a teacher trained on this corpus"
        )
    if teacher.lang != student_lang:
        raise DistillationError(
            f"the teacher's language is {teacher.lang!r} and the student's is {student_lang!r}: "
            "distil into a student of the teacher's language"
        )


def teacher_predictions(
    teacher: Language,
    inputs: Iterable[Union[str, Doc]],
    batch_size: int,
    total: Optional[int] = None,
    description: str = "Annotating",
) -> Iterator[Doc]:
    """The teacher's entities on every input, with a progress bar (documents,
    words per second). Docs keep their tokens; texts get the teacher's."""
    progress = tqdm(total=total, unit="doc", desc=description, dynamic_ncols=True)
    words = 0
    try:
        for doc in teacher.pipe(inputs, batch_size=batch_size):
            words += len(doc)
            progress.update(1)
            progress.set_postfix(words=words, refresh=False)
            yield doc
    finally:
        progress.close()


@dataclass
class CorpusStats:
    docs: int
    words: int
    entities: Dict[str, int]

    def to_dict(self) -> Dict[str, object]:
        return {**asdict(self), "entities_total": sum(self.entities.values())}


def write_docs(docs: Iterable[Doc], path: Union[str, Path]) -> CorpusStats:
    """A DocBin of the Docs' words and entities, written atomically; their counts."""
    doc_bin = DocBin(attrs=["ORTH", "SPACY", "ENT_IOB", "ENT_TYPE"], store_user_data=False)
    n_docs = n_words = 0
    entities: Dict[str, int] = {}
    for doc in docs:
        doc_bin.add(doc)
        n_docs += 1
        n_words += len(doc)
        for ent in doc.ents:
            entities[ent.label_] = entities.get(ent.label_, 0) + 1
    write_atomically(path, doc_bin.to_bytes())
    return CorpusStats(n_docs, n_words, dict(sorted(entities.items())))


def write_gold_copies(docs: Sequence[Doc], path: Union[str, Path], copies: int) -> CorpusStats:
    """The gold corpus `copies` times in one DocBin: gold's weight against the
    silver in every epoch of the student's training. Returns the counts of
    one copy."""
    if copies < 1:
        raise DistillationError(f"gold_weight must be at least 1, not {copies}")
    written = write_docs((doc for _ in range(copies) for doc in docs), path)
    return CorpusStats(
        written.docs // copies,
        written.words // copies,
        {label: count // copies for label, count in written.entities.items()},
    )


def teacher_description(teacher: Language, teacher_name: str) -> Dict[str, str]:
    meta = teacher.meta
    return {
        "teacher": teacher_name,
        "teacher_pipeline": f"{meta.get('lang', teacher.lang)}_{meta.get('name', '')}",
        "teacher_version": str(meta.get("version", "")),
        "teacher_pipeline_components": ", ".join(teacher.pipe_names),
    }


def write_json(path: Union[str, Path], data: Dict[str, object]) -> None:
    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode("utf8"))

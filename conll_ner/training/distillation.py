"""Distillation through silver data: a teacher pipeline annotates unlabelled
text, and a faster student trains on the gold corpus plus that silver.

spaCy 3.8 has no soft-target distillation (`Language.distill` exists only in
the v4 pre-releases) and its `ner` trains from annotations, so the teacher's
knowledge reaches the student as entities. Entities travel as label names in
DocBins, never as label indices: a teacher whose label ids are ordered
differently from the data (the classic cause of distilled CoNLL models that
give every entity a wrong type) cannot happen here, and a teacher whose label
set differs from the gold one is refused before anything is annotated.

The teacher annotates through the annotate engine (conll_ner/inference: the
same reader, engines, resumable shards and long-text cutting as the
`annotate` command) into the student's folder, and the silver DocBins are
built from its finished shards (silver.py): a crash loses at most the shards
in flight, and the student's corpus is a folder of DocBins, one per shard.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Sequence, Set, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from ..files import write_atomically
from ..inference.annotate import annotate
from ..inference.settings import ForeignOutputError

# what the distill-data step writes into the student's training folder
# (corpus/distill/<student_run>), which spacy.Corpus reads recursively: every
# .spacy file in it is training data, the annotations' JSONL is not
GOLD_FILE = "gold.spacy"
SILVER_DIR = "silver"
ANNOTATIONS_DIR = "teacher_annotations"
SUMMARY_FILE = "distillation.json"


class DistillationError(ValueError):
    """A teacher, student or input that cannot give a correct silver corpus."""


class TeacherLoadError(DistillationError):
    """A teacher spaCy cannot load; `reason` is spaCy's own message."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def load_teacher(teacher: str) -> Language:
    try:
        return spacy.load(teacher)
    except OSError as err:
        raise TeacherLoadError(
            f"Cannot load the teacher {teacher!r}: give a pipeline folder or an installed package name "
            "(the default is the `all` run's model-best: run `spacy project run all` first)",
            str(err),
        ) from err


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


def annotate_unlabelled(
    teacher: str,
    unlabelled: str,
    folder: Union[str, Path],
    warn: Callable[[str], None],
    **options: Any,
) -> Dict[str, object]:
    """The teacher annotates `unlabelled` into `folder` with the annotate
    engine (`options`: its keyword arguments), resuming an earlier run of the
    same teacher, input and settings. The folder belongs to the distill-data
    step, so one written with another teacher, input or settings (a
    retrained teacher, a new max_chars) is replaced after a warning instead
    of refused: its annotations can never be the new silver data. Returns
    the annotate summary."""
    try:
        return annotate(teacher, unlabelled, folder, resume=True, **options)
    except ForeignOutputError as err:
        warn(
            f"{folder} holds another teacher's, input's or settings' annotations ({'; '.join(err.differences)}): annotating afresh"
        )
        return annotate(teacher, unlabelled, folder, resume=False, **options)


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

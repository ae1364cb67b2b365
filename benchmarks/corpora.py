"""The benchmark's corpora: a language's CoNLL file, its first N sentences converted
as the project's `convert` step does (its `n_sents` var, read from
project.yml), the distill mode's split of a corpus by documents, and its
unlabelled part as the text a user would give the teacher."""

import json
import random
from pathlib import Path
from typing import Any, List, Sequence, Tuple

import spacy
import srsly
from processes import PROJECT_DIR
from spacy.tokens import DocBin

from conll_ner.data.conll import Sentence, iter_documents, read_conll_file
from conll_ner.data.docbin import conll_to_docbin, save_conversion
from conll_ner.data.sources import LANG_OF_FILE_PREFIX
from conll_ner.files import write_atomically

# Sentences per Doc of the convert step, so that spaCy trains on what a user gets
N_SENTS = int(srsly.read_yaml(PROJECT_DIR / "project.yml")["vars"]["n_sents"])


def conll_path(data_dir: Path, lang: str, split: str) -> Path:
    """A language's CoNLL file as distributed: (en, train) -> conll2003/eng.train."""
    prefix = next(prefix for prefix, file_lang in LANG_OF_FILE_PREFIX.items() if file_lang == lang)
    return data_dir / f"{prefix}.{split}"


def first_sentences(path: Path, limit: int) -> List[Sentence]:
    """The first `limit` sentences of a CoNLL file (0: all)."""
    sentences = read_conll_file(path).sentences
    return sentences[:limit] if limit else sentences


def write_docbin(sentences: Sequence[Sentence], lang: str, target: Path, source: str) -> Any:
    """Convert sentences as the convert step does, to `target` with its
    statistics beside it; returns the statistics."""
    doc_bin, stats = conll_to_docbin(list(sentences), spacy.blank(lang).vocab, n_sents=N_SENTS, source=source)
    save_conversion(doc_bin, stats, target)
    return stats


def write_texts_jsonl(docbin: Path, target: Path) -> Path:
    """The texts of a DocBin's Docs as JSONL, one {"text": ...} per line: a
    labelled corpus used as unlabelled text, in a format the annotate
    engine reads (it reads no DocBins)."""
    docs = DocBin().from_disk(docbin).get_docs(spacy.blank("xx").vocab)
    write_atomically(target, "".join(json.dumps({"text": doc.text}) + "\n" for doc in docs).encode("utf8"))
    return target


def split_documents(
    sentences: Sequence[Sentence], labelled_share: float, seed: int = 0
) -> Tuple[List[Sentence], List[Sentence]]:
    """Split a CoNLL corpus by whole documents (-DOCSTART-) into a labelled
    part holding `labelled_share` of them and an unlabelled rest, at random
    but the same for a seed. Splitting by document keeps the two parts from
    sharing the text of one news story."""
    if not 0 < labelled_share < 1:
        raise ValueError(f"labelled_share must be between 0 and 1, not {labelled_share}")
    documents = list(iter_documents(list(sentences)))
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    labelled = set(order[: round(len(documents) * labelled_share)])
    parts: Tuple[List[Sentence], List[Sentence]] = ([], [])
    for index, document in enumerate(documents):
        parts[0 if index in labelled else 1].extend(document)
    return parts

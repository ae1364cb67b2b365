"""Build spaCy training data (a DocBin) from CoNLL sentences."""

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Tuple, Union

from spacy.tokens import Doc, DocBin, Span
from spacy.util import get_lang_class
from spacy.vocab import Vocab, create_vocab

from ..files import write_atomically, write_json
from .conll import Sentence, iter_documents, read_conll_file
from .tags import count_labels, iob_to_spans


@dataclass
class ConversionStats:
    source: str
    encoding: str
    columns: int
    scheme: str  # IOB1 or IOB2, read off the tags
    documents: int  # -DOCSTART- markers in the source (0: none)
    sentences: int
    tokens: int
    entities: Dict[str, int]
    entities_total: int
    # IOB2 entities that wrongly open with I- and were read as conlleval does
    repaired_tags: int
    n_sents: int
    docs_written: int
    warnings: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def group_sentences(sentences: List[Sentence], n_sents: int) -> Iterator[List[Sentence]]:
    """Chunks of at most `n_sents` sentences that never cross a document
    boundary; `n_sents=0` keeps whole documents together."""
    for document in iter_documents(sentences):
        if n_sents <= 0:
            yield document
            continue
        for i in range(0, len(document), n_sents):
            yield document[i : i + n_sents]


def sentences_to_doc(vocab: Vocab, sentences: List[Sentence]) -> Doc:
    """One Doc with every sentence boundary kept (`is_sent_start`), so that
    evaluation per sentence stays possible on grouped documents."""
    words: List[str] = []
    sent_starts: List[bool] = []
    spans = []
    for sentence in sentences:
        offset = len(words)
        words.extend(sentence.words)
        sent_starts.extend([True] + [False] * (len(sentence.words) - 1))
        spans.extend((offset + s, offset + e, label) for s, e, label in iob_to_spans(sentence.tags).spans)
    spaces = [True] * (len(words) - 1) + [False]
    doc = Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)
    # every token outside an entity is O (annotated), not missing
    doc.set_ents([Span(doc, s, e, label) for s, e, label in spans], default="outside")
    return doc


def conll_to_docbin(
    sentences: List[Sentence],
    vocab: Vocab,
    *,
    n_sents: int,
    source: str = "<input>",
    encoding: str = "utf-8",
    columns: int = 2,
    documents: int = 0,
) -> Tuple[DocBin, ConversionStats]:
    entities: Dict[str, int] = {}
    b_starts = i_starts = 0
    tokens = 0
    for sentence in sentences:
        reading = iob_to_spans(sentence.tags)
        b_starts += reading.b_starts
        i_starts += reading.i_starts
        tokens += len(sentence.words)
        for label, count in count_labels(reading.spans).items():
            entities[label] = entities.get(label, 0) + count
    scheme = "IOB1" if i_starts > b_starts else "IOB2"
    warnings = []
    if n_sents <= 0 and documents == 0 and len(sentences) > 1:
        warnings.append(
            f"{source} has no -DOCSTART- markers, so grouping by document makes the "
            f"whole file ({len(sentences)} sentences) one Doc; pass --n-sents N to "
            "group N sentences instead"
        )
    doc_bin = DocBin(attrs=["ORTH", "SENT_START", "ENT_IOB", "ENT_TYPE"], store_user_data=False)
    for group in group_sentences(sentences, n_sents):
        doc_bin.add(sentences_to_doc(vocab, group))
    stats = ConversionStats(
        source=source,
        encoding=encoding,
        columns=columns,
        scheme=scheme,
        documents=documents,
        sentences=len(sentences),
        tokens=tokens,
        entities=dict(sorted(entities.items())),
        entities_total=sum(entities.values()),
        repaired_tags=i_starts if scheme == "IOB2" else 0,
        n_sents=n_sents,
        docs_written=len(doc_bin),
        warnings=warnings,
    )
    return doc_bin, stats


def stats_path_for(output: Union[str, Path]) -> Path:
    output = Path(output)
    return output.with_name(output.stem + ".stats.json")


def save_conversion(doc_bin: DocBin, stats: ConversionStats, output: Union[str, Path]) -> Path:
    """Write the DocBin and its statistics JSON; return the statistics path."""
    stats_path = stats_path_for(output)
    write_atomically(output, doc_bin.to_bytes())
    write_json(stats_path, stats.to_dict(), ensure_ascii=False)
    return stats_path


def convert_file(input_path: Path, output: Path, lang: str, n_sents: int) -> Tuple[ConversionStats, Path]:
    """Convert one CoNLL file to a DocBin with its statistics beside it;
    return the statistics and their path. The vocabulary is the one
    spacy.blank(lang) would build (spaCy's Language builds it with
    create_vocab), without spacy.blank loading every installed pipeline
    factory (spacy-transformers and torch) for each file."""
    conll = read_conll_file(input_path)
    doc_bin, stats = conll_to_docbin(
        conll.sentences,
        create_vocab(lang, get_lang_class(lang).Defaults),
        n_sents=n_sents,
        source=str(input_path),
        encoding=conll.encoding,
        columns=conll.columns,
        documents=conll.documents,
    )
    return stats, save_conversion(doc_bin, stats, output)

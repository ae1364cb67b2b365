"""CoNLL data from the Hugging Face hub through `datasets.load_dataset`.

The hub copies carry `tokens` and `ner_tags` (a `ClassLabel` sequence) per
sentence. We write them back out as CoNLL text so that the rest of the
workflow reads hub data and the original files with one converter.
`datasets` 4+ no longer runs loading scripts, so the script datasets
(`conll2003`, `conll2002`) only load from a parquet copy: the dataset id and
revision are settings (`refs/convert/parquet` works for any script dataset).
"""

from pathlib import Path
from typing import Any, Iterable, List, Optional, Union

from ..files import write_atomically
from .conll import DOCSTART, Sentence

# Our split names (the original file suffixes) and the hub's.
HUB_SPLIT_OF_FILE = {"train": "train", "testa": "validation", "testb": "test"}
# Original file prefix -> (corpus, whose dataset id is a setting; hub config name)
HUB_SOURCES = {
    "conll2003/eng": ("conll2003", None),
    "conll2002/esp": ("conll2002", "es"),
    "conll2002/ned": ("conll2002", "nl"),
}


def load_hub_split(dataset_id: str, config_name: Optional[str], split: str, revision: Optional[str]) -> Any:
    import datasets

    return datasets.load_dataset(dataset_id, config_name or None, split=split, revision=revision or None)


def hub_rows_to_sentences(dataset: Any, source: str = "<hub>") -> List[Sentence]:
    """Read `tokens`/`ner_tags` rows; a row that is only `-DOCSTART-` marks a
    new document, as in the original files."""
    features = dataset.features
    if "tokens" not in features or "ner_tags" not in features:
        raise ValueError(f"{source}: expected the features 'tokens' and 'ner_tags', found {sorted(features)}")
    tag_names = features["ner_tags"].feature.names
    sentences: List[Sentence] = []
    doc_start = False
    for index, row in enumerate(dataset):
        tokens = row["tokens"]
        if not tokens:
            continue
        if tokens[0] == DOCSTART:
            doc_start = True
            continue
        tags = [tag_names[tag_id] for tag_id in row["ner_tags"]]
        sentences.append(Sentence(list(tokens), tags, doc_start, index + 1, source))
        doc_start = False
    return sentences


def sentences_to_conll(sentences: Iterable[Sentence]) -> str:
    lines: List[str] = []
    for sentence in sentences:
        if sentence.doc_start:
            lines.extend([f"{DOCSTART} O", ""])
        lines.extend(f"{word} {tag}" for word, tag in zip(sentence.words, sentence.tags))
        lines.append("")
    return "\n".join(lines)


def hub_split_to_conll(
    dataset_id: str,
    config_name: Optional[str],
    split: str,
    revision: Optional[str],
    output: Union[str, Path],
) -> int:
    """Write one hub split as a UTF-8 CoNLL file; return its sentence count."""
    dataset = load_hub_split(dataset_id, config_name, split, revision)
    sentences = hub_rows_to_sentences(dataset, f"{dataset_id}[{config_name}]/{split}")
    write_atomically(output, sentences_to_conll(sentences).encode("utf8"))
    return len(sentences)

import datasets
import pytest
import spacy
from datasets import Dataset
from hub_fixtures import ROWS, make_dataset

from conll_ner.data import hub
from conll_ner.data.conll import read_conll_file
from conll_ner.data.docbin import conll_to_docbin


def test_hub_rows_become_sentences_with_documents():
    sentences = hub.hub_rows_to_sentences(make_dataset(ROWS))
    assert [s.words for s in sentences] == [r[0] for r in ROWS if r[0] != ["-DOCSTART-"]]
    assert [s.doc_start for s in sentences] == [True, False, True]
    assert sentences[1].tags == ["B-PER", "I-PER"]


def test_hub_split_round_trips_through_the_converter(tmp_path, monkeypatch):
    calls = []

    def fake_load_dataset(path, name=None, split=None, revision=None):
        calls.append((path, name, split, revision))
        return make_dataset(ROWS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    output = tmp_path / "conll2002" / "esp.train"
    n = hub.hub_split_to_conll("eriktks/conll2002", "es", "train", "refs/convert/parquet", output)
    assert n == 3
    assert calls == [("eriktks/conll2002", "es", "train", "refs/convert/parquet")]
    conll = read_conll_file(output)
    assert conll.documents == 2 and conll.encoding == "utf-8"
    _, stats = conll_to_docbin(conll.sentences, spacy.blank("es").vocab, n_sents=0, documents=conll.documents)
    assert stats.entities == {"LOC": 1, "MISC": 1, "ORG": 1, "PER": 1}
    assert stats.repaired_tags == 1 and stats.tokens == 8


def test_hub_dataset_without_ner_tags_is_rejected():
    dataset = Dataset.from_dict({"tokens": [["a"]], "tags": [[0]]})
    with pytest.raises(ValueError, match=r"x/y: expected the features 'tokens' and 'ner_tags'"):
        hub.hub_rows_to_sentences(dataset, "x/y")

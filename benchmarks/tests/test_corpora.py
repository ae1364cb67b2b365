"""The distill mode's split of a corpus by whole documents."""

import pytest
from corpora import split_documents

from conll_ner.data.conll import Sentence


def corpus(n_documents: int):
    """Documents of 1-3 sentences whose words say which document they are from."""
    sentences = []
    for document in range(n_documents):
        for index in range(1 + document % 3):
            sentences.append(Sentence([f"d{document}", f"s{index}"], ["B-PER", "O"], doc_start=index == 0))
    return sentences


def document_ids(sentences):
    return [sentence.words[0] for sentence in sentences]


def test_split_is_deterministic_and_disjoint_by_documents():
    sentences = corpus(40)
    labelled, unlabelled = split_documents(sentences, 0.25, seed=0)
    again = split_documents(sentences, 0.25, seed=0)
    assert (labelled, unlabelled) == again
    labelled_docs, unlabelled_docs = set(document_ids(labelled)), set(document_ids(unlabelled))
    assert len(labelled_docs) == 10 and len(unlabelled_docs) == 30
    assert not labelled_docs & unlabelled_docs
    # every sentence lands in exactly one part, whole documents together
    assert sorted(map(repr, labelled + unlabelled)) == sorted(map(repr, sentences))
    assert all(sum(1 for s in labelled if s.words[0] == doc) in (0, 1 + int(doc[1:]) % 3) for doc in labelled_docs)
    # documents are drawn at random, not the first quarter of the file
    assert labelled_docs != {f"d{i}" for i in range(10)}
    assert split_documents(sentences, 0.25, seed=1)[0] != labelled


def test_split_refuses_a_share_outside_0_1():
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_documents(corpus(4), 1.0)

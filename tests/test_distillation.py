import sys

import pytest
import spacy
from conftest import PROJECT_DIR
from spacy.tokens import Doc, DocBin

from conll_ner.data.conll import Sentence
from conll_ner.training.distillation import DistillationError, check_teacher, write_gold_copies

sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
from corpora import split_documents  # noqa: E402  (the distill benchmark's split)


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


def rule_teacher(lang: str = "en", labels=("PER", "ORG")):
    """A teacher whose entities are known: an entity ruler in the ner slot."""
    nlp = spacy.blank(lang)
    ruler = nlp.add_pipe("entity_ruler", name="ner")
    patterns = {"PER": "Ada Lovelace", "ORG": "Acme", "LOC": "Paris"}
    ruler.add_patterns([{"label": label, "pattern": patterns[label]} for label in labels])
    return nlp


def test_a_teacher_with_other_labels_or_language_is_refused():
    check_teacher(rule_teacher(), {"PER", "ORG"}, "en")
    with pytest.raises(
        DistillationError, match=r"\['ORG', 'PER'\] differ from the gold data's \['LOC', 'ORG', 'PER'\]"
    ):
        check_teacher(rule_teacher(), {"PER", "ORG", "LOC"}, "en")
    with pytest.raises(DistillationError, match="language is 'en' and the student's is 'es'"):
        check_teacher(rule_teacher(), {"PER", "ORG"}, "es")
    with pytest.raises(DistillationError, match="no ner component"):
        check_teacher(spacy.blank("en"), {"PER"}, "en")


def test_gold_copies_weigh_gold_against_silver(tmp_path):
    vocab = spacy.blank("en").vocab
    gold = [Doc(vocab, words=["Ada", "Lovelace"], ents=["B-PER", "I-PER"]), Doc(vocab, words=["x"], ents=["O"])]
    stats = write_gold_copies(gold, tmp_path / "gold.spacy", copies=3)
    assert len(DocBin().from_disk(tmp_path / "gold.spacy")) == 6
    assert (stats.docs, stats.words, stats.entities) == (2, 3, {"PER": 1})
    with pytest.raises(DistillationError, match="at least 1"):
        write_gold_copies(gold, tmp_path / "none.spacy", copies=0)

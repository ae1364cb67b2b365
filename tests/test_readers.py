"""conll_ner.GoldTokensCorpus.v1: the dev reader predicts on the CoNLL tokens of whole Docs."""

import spacy
from spacy.tokens import Doc, DocBin

from conll_ner.data.readers import create_gold_tokens_corpus


def gold_doc(nlp, words, sent_starts):
    # tokens spaCy's tokenizer would cut otherwise: "U.S.-based" and "(ORG)" are one token each here
    return Doc(nlp.vocab, words=words, spaces=[True] * len(words), sent_starts=sent_starts)


def test_examples_keep_the_gold_tokens_and_whole_docs_skip_empty_ones_and_honour_limit(tmp_path):
    nlp = spacy.blank("en")
    first = gold_doc(nlp, ["U.S.-based", "(ORG)", "won", ".", "It", "rained", "."], [1, 0, 0, 0, 1, 0, 0])
    second = gold_doc(nlp, ["Peter", "Blackburn"], [1, 0])
    third = gold_doc(nlp, ["Brussels", "1996-08-22"], [1, 0])
    (tmp_path / "a").mkdir()
    DocBin(docs=[first, Doc(nlp.vocab, words=[]), second]).to_disk(tmp_path / "a" / "1.spacy")
    DocBin(docs=[third]).to_disk(tmp_path / "a" / "2.spacy")
    examples = list(create_gold_tokens_corpus(tmp_path / "a")(nlp))
    assert sorted([t.text for t in eg.predicted] for eg in examples) == sorted(
        [[t.text for t in doc] for doc in (first, second, third)]
    )
    for eg in examples:
        # one Doc per example, its words those of the reference, not spaCy's tokenization of its text
        assert [t.text for t in eg.predicted] == [t.text for t in eg.reference]
        assert eg.predicted.text == eg.reference.text
    assert len(list(create_gold_tokens_corpus(tmp_path / "a" / "1.spacy", limit=1)(nlp))) == 1

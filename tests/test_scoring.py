import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from spacy.tokens import Doc, Span
from spacy.training import Example

from conll_ner.data.tags import iob_to_spans
from conll_ner.evaluation.scoring import predicted_iob2, score_entities

NLP = spacy.blank("en")
TAGS = st.sampled_from(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"])


def doc_from_tags(words, tags, sent_starts=None):
    """A Doc whose entities are the conlleval reading of (possibly invalid) IOB tags."""
    doc = Doc(NLP.vocab, words=words, sent_starts=sent_starts)
    doc.set_ents([Span(doc, s, e, label) for s, e, label in iob_to_spans(tags).spans], default="outside")
    return doc


def example_from_tags(gold_tags, pred_tags):
    words = [f"w{i}" for i in range(len(gold_tags))]
    return Example(doc_from_tags(words, pred_tags), doc_from_tags(words, gold_tags))


pairs = st.integers(min_value=1, max_value=25).flatmap(
    lambda n: st.tuples(st.lists(TAGS, min_size=n, max_size=n), st.lists(TAGS, min_size=n, max_size=n))
)


@settings(max_examples=300, deadline=None)
@given(st.lists(pairs, min_size=1, max_size=6))
def test_scores_equal_seqeval_on_random_invalid_iob(sequences):
    gold = [g for g, _ in sequences]
    pred = [p for _, p in sequences]
    scores = score_entities([example_from_tags(g, p) for g, p in sequences])
    assert scores["ents_p"] == pytest.approx(precision_score(gold, pred), abs=1e-12)
    assert scores["ents_r"] == pytest.approx(recall_score(gold, pred), abs=1e-12)
    assert scores["ents_f"] == pytest.approx(f1_score(gold, pred), abs=1e-12)
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    for label, values in scores["ents_per_type"].items():
        assert values["p"] == pytest.approx(report[label]["precision"], abs=1e-12)
        assert values["r"] == pytest.approx(report[label]["recall"], abs=1e-12)
        assert values["f"] == pytest.approx(report[label]["f1-score"], abs=1e-12)
        assert scores["ents_counts"][label]["support"] == report[label]["support"]
    gold_types = {k for k in report if k not in ("micro avg", "macro avg", "weighted avg")}
    assert gold_types <= set(scores["ents_per_type"])


def test_hand_computed_scores_and_errors():
    gold = ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG", "O", "B-MISC", "O"]
    pred = ["B-PER", "I-PER", "O", "B-ORG", "O", "B-ORG", "O", "B-LOC", "O", "O"]
    scores = score_entities([example_from_tags(gold, pred)])
    # predicted: PER ok, ORG(3) type error, ORG(5) boundary error, LOC(7) spurious; MISC missed
    assert scores["ents_p"] == pytest.approx(1 / 4)
    assert scores["ents_r"] == pytest.approx(1 / 4)
    assert scores["ents_f"] == pytest.approx(1 / 4)
    assert scores["ents_per_type"]["PER"] == {"p": 1.0, "r": 1.0, "f": 1.0}
    assert scores["ents_per_type"]["ORG"]["p"] == 0.0
    assert scores["ents_errors"] == {
        "type": {"LOC": 1},
        "boundary": {"ORG": 1},
        "boundary_and_type": {},
        "missed": {"MISC": 1},
        "spurious": {"LOC": 1},
    }
    assert scores["ents_counts"]["ORG"] == {"tp": 0, "fp": 2, "fn": 1, "support": 1}


def test_no_entities_scores_zero_not_none():
    scores = score_entities([example_from_tags(["O", "O"], ["O", "O"])])
    assert (scores["ents_p"], scores["ents_r"], scores["ents_f"]) == (0.0, 0.0, 0.0)


def test_misaligned_prediction_is_widened_not_dropped():
    gold = Doc(NLP.vocab, words=["New", "York-based", "firm"], spaces=[True, True, False])
    gold.set_ents([Span(gold, 0, 2, "ORG")], default="outside")
    pred = Doc(NLP.vocab, words=["New", "York", "-", "based", "firm"], spaces=[True, False, False, True, False])
    pred.set_ents([Span(pred, 0, 2, "LOC")])  # "New York": ends inside the gold token "York-based"
    scores = score_entities([Example(pred, gold)])
    assert scores["ents_projection"]["misaligned"] == 1
    # widened to "New York-based" = the gold span, but with the wrong type
    assert scores["ents_counts"]["LOC"] == {"tp": 0, "fp": 1, "fn": 0, "support": 0}
    assert scores["ents_counts"]["ORG"]["fn"] == 1
    assert scores["ents_errors"]["type"] == {"ORG": 1}


def test_overlapping_projections_count_as_false_positives():
    gold = Doc(NLP.vocab, words=["AB", "C"], spaces=[True, False])
    gold.set_ents([Span(gold, 0, 1, "ORG")], default="outside")
    pred = Doc(NLP.vocab, words=["A", "B", "C"], spaces=[False, True, False])
    pred.set_ents([Span(pred, 0, 1, "ORG"), Span(pred, 1, 2, "PER")])
    scores = score_entities([Example(pred, gold)])
    assert scores["ents_projection"]["overlapping"] == 1
    assert scores["ents_counts"]["ORG"]["tp"] == 1 and scores["ents_counts"]["PER"]["fp"] == 1
    assert scores["ents_p"] == pytest.approx(0.5)
    gold_tags, pred_tags = predicted_iob2(Example(pred, gold))
    assert gold_tags == pred_tags == ["B-ORG", "O"]


def test_per_sentence_cuts_entities_at_sentence_boundaries():
    words = ["a", "b", "c", "d"]
    gold = doc_from_tags(words, ["O", "B-PER", "B-PER", "O"], sent_starts=[True, False, True, False])
    pred = doc_from_tags(words, ["O", "B-PER", "I-PER", "O"])
    example = Example(pred, gold)
    assert score_entities([example])["ents_f"] == 0.0
    per_sentence = score_entities([example], per_sentence=True)
    assert per_sentence["ents_f"] == 1.0 and per_sentence["ents_projection"]["split_at_sentence"] == 1
    assert predicted_iob2(example) == (["O", "B-PER", "B-PER", "O"], ["O", "B-PER", "B-PER", "O"])

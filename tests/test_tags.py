from hypothesis import given
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities

from conll_ner.data.tags import count_labels, iob_to_spans
from conll_ner.evaluation.scoring import spans_to_tags

TAGS = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])


def test_iob1_and_iob2_read_the_same():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC"]
    iob2 = ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert iob_to_spans(iob1).spans == iob_to_spans(iob2).spans == [(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC")]
    assert (iob_to_spans(iob1).b_starts, iob_to_spans(iob1).i_starts) == (1, 2)


def test_type_switch_inside_entity_starts_new_entity():
    assert iob_to_spans(["B-PER", "I-LOC", "I-LOC"]).spans == [(0, 1, "PER"), (1, 3, "LOC")]


@given(st.lists(TAGS, max_size=30))
def test_spans_match_seqeval_and_round_trip(tags):
    spans = iob_to_spans(tags).spans
    assert sorted((label, s, e - 1) for s, e, label in spans) == sorted(get_entities(tags))
    assert iob_to_spans(spans_to_tags(spans, len(tags))).spans == spans
    assert sum(count_labels(spans).values()) == len(spans)

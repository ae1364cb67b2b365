import pytest
import spacy
from spacy.language import Language

from conll_ner.evaluation.metrics import median_seconds, words_per_second


class PassClock:
    """A clock that the pipeline advances: each pass over the corpus costs
    the seconds given for it, in order, so timing needs no sleeping."""

    def __init__(self, pass_seconds):
        self.now = 0.0
        self.pass_seconds = list(pass_seconds)

    def __call__(self) -> float:
        return self.now

    def end_pass(self) -> None:
        self.now += self.pass_seconds.pop(0)


def test_median_seconds_is_the_median_of_its_passes():
    clock = PassClock([0.6, 0.05, 0.07])
    assert median_seconds(clock.end_pass, repeats=3, clock=clock) == pytest.approx(0.07)
    assert not clock.pass_seconds


def test_words_per_second_times_three_passes_after_an_untimed_batch():
    clock = PassClock([0.6, 0.05, 0.08])
    nlp = spacy.blank("en")
    first_docs = []

    @Language.component("ends_a_pass_at_its_first_doc")
    def ends_a_pass(doc):
        if doc[0].text == "first":
            first_docs.append(doc)
            if len(first_docs) > 1:  # the warm-up batch is not timed
                clock.end_pass()
        return doc

    nlp.add_pipe("ends_a_pass_at_its_first_doc")
    sentences = [["first", "word"]] + [["other", "words", "here"]] * 9
    n_words = sum(len(words) for words in sentences)
    speed = words_per_second(nlp, sentences, batch_size=100, repeats=3, clock=clock)
    assert len(first_docs) == 4 and not clock.pass_seconds  # a warm-up and three timed passes
    assert speed == pytest.approx(n_words / 0.08)  # the median pass, not the mean or the sum

import time

import spacy
from spacy.language import Language

from conll_ner.evaluation.metrics import words_per_second

# seconds that each pass over the corpus sleeps, in order: the untimed
# warm-up batch, then the timed passes, of which one is disturbed
PASS_SLEEPS = [0.0, 0.6, 0.05, 0.05]


@Language.component("sleeps_per_pass")
def sleeps_per_pass(doc):
    """Sleeps once per pass, at its first Doc (each pass starts with "first")."""
    if doc[0].text == "first":
        time.sleep(PASS_SLEEPS.pop(0))
    return doc


def test_words_per_second_is_the_median_of_its_passes():
    nlp = spacy.blank("en")
    nlp.add_pipe("sleeps_per_pass")
    sentences = [["first", "word"]] + [["other", "words", "here"]] * 9
    n_words = sum(len(words) for words in sentences)
    speed = words_per_second(nlp, sentences, batch_size=100, repeats=3)
    assert not PASS_SLEEPS  # a warm-up and three timed passes ran
    # the median pass took ~0.05 s; the mean (0.23 s) or the sum would be far slower
    assert n_words / 0.1 < speed < n_words / 0.04

"""conll_ner.LanguageWeightedCorpus.v1: a joint run reads each language's file
as many times per epoch as [corpora.train.copies] says."""

from collections import Counter

import pytest
import spacy
from spacy.tokens import Doc, DocBin

from conll_ner.training.joint_corpus import CorpusWeightsError, create_language_weighted_corpus


def write_language(folder, lang: str, n_docs: int) -> None:
    nlp = spacy.blank("xx")
    docs = [Doc(nlp.vocab, words=[f"{lang}{i}", "word"]) for i in range(n_docs)]
    DocBin(docs=docs).to_disk(folder / f"{lang}.spacy")


def languages_read(reader) -> Counter:
    return Counter(eg.reference[0].text[:2] for eg in reader(spacy.blank("xx")))


@pytest.fixture
def joint_folder(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for lang, n_docs in (("en", 3), ("es", 2), ("nl", 4)):
        write_language(folder, lang, n_docs)
    return folder


def test_a_folder_reads_each_language_its_copies_and_the_others_once(joint_folder):
    reader = create_language_weighted_corpus(joint_folder, copies={"nl": 2})
    assert languages_read(reader) == {"en": 3, "es": 2, "nl": 8}
    # every copy is the whole file: each Dutch Doc twice
    texts = Counter(eg.reference[0].text for eg in reader(spacy.blank("xx")))
    assert all(texts[f"nl{i}"] == 2 for i in range(4)) and texts["en0"] == 1


def test_no_copies_reads_the_folder_as_spacy_corpus_does(joint_folder):
    from spacy.training import Corpus

    ours = [eg.reference.text for eg in create_language_weighted_corpus(joint_folder, copies={})(spacy.blank("xx"))]
    spacys = [eg.reference.text for eg in Corpus(joint_folder)(spacy.blank("xx"))]
    assert ours == spacys


def test_a_single_language_file_is_read_once_whatever_the_copies(joint_folder):
    reader = create_language_weighted_corpus(joint_folder / "nl.spacy", copies={"nl": 3})
    assert languages_read(reader) == {"nl": 4}


def test_limit_applies_to_each_file(joint_folder):
    reader = create_language_weighted_corpus(joint_folder, copies={"nl": 2}, limit=1)
    assert languages_read(reader) == {"en": 1, "es": 1, "nl": 2}


def test_other_files_of_a_folder_are_read_once(tmp_path):
    """The distillation step's student folder (gold.spacy, silver/) under a
    config that weighs Dutch: nothing there is a language's file."""
    (tmp_path / "silver").mkdir()
    write_language(tmp_path, "nl", 2)
    (tmp_path / "nl.spacy").rename(tmp_path / "gold.spacy")
    write_language(tmp_path / "silver", "es", 3)
    assert languages_read(create_language_weighted_corpus(tmp_path, copies={"nl": 2})) == {"nl": 2, "es": 3}


@pytest.mark.parametrize(
    "copies, message",
    [
        ({"de": 2}, "names de: the languages are en, es, nl"),
        ({"nl": 0}, r"nl = 0: a whole number of at least 1"),
        ({"nl": 1.5}, r"nl = 1.5: a whole number of at least 1"),
    ],
)
def test_copies_the_folder_cannot_honour_are_refused_with_the_reason(joint_folder, copies, message):
    with pytest.raises(CorpusWeightsError, match=message):
        create_language_weighted_corpus(joint_folder, copies=copies)


def test_the_train_steps_plan_counts_the_copies(joint_folder):
    """Epochs, warmup and evaluations follow the weighted corpus: the plan of
    configs/transformer.cfg on a joint folder counts Dutch as many times as
    its copies say (resolving the reader and batcher only, no encoder)."""
    from conftest import PROJECT_DIR
    from spacy.util import load_config

    from conll_ner.training.budget import plan_training

    def plan(**overrides):
        config = load_config(
            PROJECT_DIR / "configs" / "transformer.cfg",
            overrides={"paths.train": str(joint_folder), "nlp.lang": "xx", **overrides},
        )
        return plan_training(config, epochs=1)

    copies = load_config(PROJECT_DIR / "configs" / "transformer.cfg")["corpora"]["train"]["copies"]
    once = plan(**{f"corpora.train.copies.{lang}": 1 for lang in copies})
    assert (once.corpus_docs, once.corpus_words) == (9, 18)  # 3 + 2 + 4 Docs of 2 words
    weighted = plan()
    extra_docs = sum((count - 1) * {"en": 3, "es": 2, "nl": 4}[lang] for lang, count in copies.items())
    assert extra_docs > 0 and (weighted.corpus_docs, weighted.corpus_words) == (9 + extra_docs, 18 + 2 * extra_docs)

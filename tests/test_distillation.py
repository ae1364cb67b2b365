import pytest
import spacy
from spacy.tokens import Doc, DocBin

from conll_ner.training.distillation import DistillationError, check_teacher, write_gold_copies


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

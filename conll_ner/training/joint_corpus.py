"""The training corpus of a joint (multi) run with each language weighted.

A joint run trains on the corpus folder of every language's file
(corpus/train/en.spacy, es.spacy, nl.spacy). Read once each, a language's
share of the updates is its share of the words, and a language whose
annotation conventions the others contradict loses to them: CoNLL-2002 Dutch
tags name compounds (BSE-besmetting, VRT-journalist) and capitalised
adjectives as MISC, which Spanish leaves outside entities. `copies` reads a
language's file that many times in every epoch (the examples, not a resampling:
spaCy's training loop shuffles them each epoch), as the distillation step's
gold_weight does for the gold corpus beside the silver. Why the default
weights are what they are: docs/recipes.md.
"""

from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Union

from spacy.errors import Errors
from spacy.language import Language
from spacy.training import Corpus, Example
from spacy.training.corpus import walk_corpus
from spacy.util import registry

from ..runs import LANGUAGES, MULTI, spacy_lang

LANGUAGE_WEIGHTED_CORPUS = "conll_ner.LanguageWeightedCorpus.v1"


class CorpusWeightsError(ValueError):
    pass


def checked_copies(copies: Dict[str, int]) -> Dict[str, int]:
    """`copies` checked: languages of the workflow (a misspelt one would
    silently weigh nothing), each read a whole number of times, at least once."""
    unknown = sorted(set(copies) - set(LANGUAGES))
    if unknown:
        raise CorpusWeightsError(
            f"[corpora.train.copies] names {', '.join(unknown)}: the languages are {', '.join(LANGUAGES)} "
            "(the files <lang>.spacy of a joint corpus folder)"
        )
    for lang, count in copies.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise CorpusWeightsError(f"[corpora.train.copies] {lang} = {count!r}: a whole number of at least 1")
    return dict(copies)


@registry.readers(LANGUAGE_WEIGHTED_CORPUS)
def create_language_weighted_corpus(
    path: Optional[Union[str, Path]],
    copies: Dict[str, int],
    max_length: int = 0,
    gold_preproc: bool = False,
    limit: int = 0,
    augmenter: Optional[Callable] = None,
) -> Callable[[Language], Iterator[Example]]:
    """spaCy's `spacy.Corpus.v1` (same settings, `limit` per file) over a
    folder, its <lang>.spacy files each read `copies[lang]` times per epoch
    and any other file once. A single file, the corpus of a one-language run,
    is read once whatever `copies` says: the weights set languages against
    each other."""
    if path is None:
        raise ValueError(Errors.E913)
    path = Path(path)
    counts = checked_copies(copies)

    def corpus(file: Path) -> Corpus:
        return Corpus(file, limit=limit, gold_preproc=gold_preproc, max_length=max_length, augmenter=augmenter)

    if not path.is_dir():
        return corpus(path)
    # any other file (the distillation step's gold.spacy and silver/) is read once
    corpora = [(corpus(file), counts.get(file.stem, 1)) for file in walk_corpus(path, ".spacy")]

    def read(nlp: Language) -> Iterator[Example]:
        for language_corpus, count in corpora:
            for _ in range(count):
                yield from language_corpus(nlp)

    return read


def language_copies(config: Dict[str, Any]) -> Dict[str, int]:
    """How many times per epoch a joint run read each language's file, where
    not once, from its config (a pipeline's config.cfg); {} for a
    one-language run or another reader."""
    reader = config["corpora"]["train"]
    if config["nlp"]["lang"] != spacy_lang(MULTI) or reader.get("@readers") != LANGUAGE_WEIGHTED_CORPUS:
        return {}
    return {lang: count for lang, count in sorted(reader.get("copies", {}).items()) if count != 1}


def describe_copies(copies: Dict[str, int]) -> str:
    """`nl x2, ...`: how a model card or a report names a joint run's language copies."""
    return ", ".join(f"{lang} x{count}" for lang, count in sorted(copies.items()))

"""A corpus reader that predicts on the gold (CoNLL) tokens of whole Docs.

CoNLL scores are defined on the given tokens. spaCy's `gold_preproc = true`
would give us those, but it also splits every Doc into single sentences,
which throws away the document context that the converter's grouping keeps.
This reader keeps both. Like the scorer, it imports nothing from the rest of
the project so that it can travel inside packaged pipelines.
"""

from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from spacy.errors import Errors
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.training.corpus import walk_corpus
from spacy.util import registry


@registry.readers("conll_ner.GoldTokensCorpus.v1")
def create_gold_tokens_corpus(
    path: Optional[Union[str, Path]], limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """The path is Optional as in spaCy's own `spacy.Corpus.v1`, so that
    `spacy debug config` validates a config whose paths are still null; as
    there, a null path is refused when the corpus is built."""
    if path is None:
        raise ValueError(Errors.E913)
    corpus = Corpus(path, limit=limit)

    def read(nlp: Language) -> Iterator[Example]:
        # the Corpus's own reading (its files, order, limit and the skipping of empty Docs), without the
        # examples it would make by tokenizing each text again, which this reader replaces
        for reference in corpus.read_docbin(nlp.vocab, walk_corpus(corpus.path, ".spacy")):
            words = [token.text for token in reference]
            spaces = [bool(token.whitespace_) for token in reference]
            yield Example(Doc(nlp.vocab, words=words, spaces=spaces), reference)

    return read

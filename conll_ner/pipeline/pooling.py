"""First-piece pooling of a token's subword pieces that accepts tokens without
a piece.

thinc's `reduce_first.v1` refuses a batch in which any token has no piece
("all sequence lengths must be > 0"). The CoNLL files give every token a
piece, but raw text does not: BERT's tokenizer drops a blank line or a double
space (spaCy tokens of their own), XLM-R's a zero-width space, so any such
text fails with it, where `reduce_mean.v1` gives such a token a row of
zeros. This layer is `reduce_first.v1` with that one difference, so a
pipeline that pools by first piece predicts on any text.
"""

from typing import Callable, Tuple, cast

from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d, Ragged


@registry.layers("conll_ner.reduce_first_piece.v1")
def create_reduce_first_piece() -> Model[Ragged, Floats2d]:
    """Each token's first piece; a row of zeros for a token without one."""
    return Model("reduce_first_piece", forward)


def forward(model: Model[Ragged, Floats2d], pieces: Ragged, is_train: bool) -> Tuple[Floats2d, Callable]:
    X = cast(Floats2d, pieces.dataXd)
    lengths = pieces.lengths
    # the row of each token's first piece (for a token without pieces, the
    # next token's, never read)
    firsts = model.ops.xp.cumsum(lengths) - lengths
    has_piece = lengths > 0
    Y = model.ops.alloc2f(lengths.shape[0], X.shape[1], dtype=X.dtype)
    Y[has_piece] = X[firsts[has_piece]]

    def backprop(dY: Floats2d) -> Ragged:
        dX = model.ops.alloc2f(X.shape[0], X.shape[1], dtype=dY.dtype)
        dX[firsts[has_piece]] = dY[has_piece]
        return Ragged(dX, lengths)

    return Y, backprop

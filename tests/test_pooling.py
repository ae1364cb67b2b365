"""conll_ner.reduce_first_piece.v1: thinc's reduce_first.v1 where every token
has a piece, a row of zeros where one has none, and a transformer pipeline
pooling with it predicts on text with tokens that the encoder's tokenizer
drops (a paragraph break: spaCy's whitespace token, no WordPiece)."""

import numpy
import pytest
from thinc.api import NumpyOps, registry
from thinc.types import Ragged
from tiny_models import build_tiny_bert, fixture_texts, shipped_pipeline, train

POOLING = "components.ner.model.tok2vec.*.transformer.pooling.@layers"
# "\n\n" is a spaCy token of its own, which BERT's tokenizer drops
NO_PIECE_TEXT = "Brussels .\n\nPeter Blackburn visited Brussels ."


def pieces(lengths):
    rows = int(sum(lengths))
    data = numpy.arange(rows * 3, dtype="float32").reshape(rows, 3) + 1
    return Ragged(data, NumpyOps().asarray1i(lengths))


def test_equals_thincs_reduce_first_where_every_token_has_a_piece():
    ours = registry.layers.get("conll_ner.reduce_first_piece.v1")()
    thincs = registry.layers.get("reduce_first.v1")()
    X = pieces([2, 1, 3])
    Y, backprop = ours(X, is_train=True)
    Y_thinc, backprop_thinc = thincs(X, is_train=True)
    numpy.testing.assert_array_equal(Y, Y_thinc)
    dY = numpy.ones_like(Y) * numpy.arange(1, 4, dtype="float32")[:, None]
    dX = backprop(dY)
    numpy.testing.assert_array_equal(dX.data, backprop_thinc(dY).data)
    numpy.testing.assert_array_equal(dX.lengths, X.lengths)


def test_a_token_without_pieces_gets_zeros_and_passes_no_gradient():
    ours = registry.layers.get("conll_ner.reduce_first_piece.v1")()
    X = pieces([0, 2, 0, 1, 0])
    Y, backprop = ours(X, is_train=True)
    assert Y.shape == (5, 3)
    numpy.testing.assert_array_equal(Y[[0, 2, 4]], 0)
    numpy.testing.assert_array_equal(Y[1], X.data[0])
    numpy.testing.assert_array_equal(Y[3], X.data[2])
    dX = backprop(numpy.ones_like(Y))
    numpy.testing.assert_array_equal(dX.data, numpy.array([[1, 1, 1], [0, 0, 0], [1, 1, 1]], dtype="float32"))
    with pytest.raises(ValueError, match="lengths must be > 0"):
        registry.layers.get("reduce_first.v1")()(X, is_train=False)


def test_empty_batch():
    Y, backprop = registry.layers.get("conll_ner.reduce_first_piece.v1")()(pieces([]), is_train=True)
    assert Y.shape == (0, 3)
    assert backprop(Y).dataXd.shape == (0, 3)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return str(build_tiny_bert(tmp_path_factory.mktemp("bert"), fixture_texts()))


def test_the_shipped_config_pooling_by_first_piece_predicts_on_any_text(tiny_bert):
    """thinc's own layer fails on a text with a paragraph break; with ours the
    NER model reads zeros for that token and the pieces' vectors for the others."""
    model = "components.transformer.model.name"
    thincs = train(shipped_pipeline("transformer", {model: tiny_bert, POOLING: "reduce_first.v1"}), updates=2)
    assert thincs.make_doc(NO_PIECE_TEXT)[2].text == "\n\n"
    with pytest.raises(ValueError, match="lengths must be > 0"):
        thincs(NO_PIECE_TEXT)
    nlp = train(shipped_pipeline("transformer", {model: tiny_bert, POOLING: "conll_ner.reduce_first_piece.v1"}))
    doc = nlp(NO_PIECE_TEXT)
    listener = next(node for node in nlp.get_pipe("ner").model.walk() if node.has_ref("listener"))
    rows = listener.predict([doc])[0]
    assert rows.shape[0] == len(doc)
    empty = [i for i, row in enumerate(rows) if not row.any()]
    assert empty == [2]

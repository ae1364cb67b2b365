"""The NER model's transformer listener, whose output for an empty Doc has the
transformer's width.

spacy-transformers' `trfs2arrays` gives a Doc without tokens an array of width
0 (its comment: the width is unknown when a whole batch is empty). Alone that
is harmless, but our NER model concatenates the listener's output with a shape
embedding (configs/transformer.cfg), and thinc's `concatenate` stacks the
batch's arrays of each sublayer first: a batch mixing empty and non-empty Docs
then fails ("along dimension 1, the array at index 0 has size 0 and the array
at index 1 has size 384"). The listener knows the width (the transformer
component sets its `nO` when it connects), so the layer that chains the
listener to the pooling gives empty Docs a (0, nO) array.

It is `spacy-transformers.TransformerListener.v1` with that chain: the same
layers, names, dimensions and weights, so a pipeline trained with the
spacy-transformers architecture loads with this one as a config override.

spacy-transformers is imported where it is used: packaged CNN pipelines carry
this module too, and need not install it.
"""

from typing import Callable, List, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.layers.chain import init as chain_init
from thinc.types import Floats2d, Ragged


@registry.architectures("conll_ner.TransformerListener.v1")
def create_transformer_listener(
    pooling: Model[Ragged, Floats2d], grad_factor: float = 1.0, upstream: str = "*"
) -> Model[List[Doc], List[Floats2d]]:
    """`spacy-transformers.TransformerListener.v1` whose output for an empty
    Doc has the transformer's width: same arguments, layers and weights."""
    from spacy_transformers.layers import TransformerListener, trfs2arrays

    listener = TransformerListener(upstream_name=upstream)
    pooled = trfs2arrays(pooling, grad_factor)
    return Model(
        f"{listener.name}>>{pooled.name}",
        forward,
        init=chain_init,
        dims={"nO": None},
        layers=[listener, pooled],
        refs={"listener": listener},
    )


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    """The listener, then the pooling (as thinc's chain runs them), then a
    (0, nO) array for every Doc without tokens. The gradient of such a Doc has
    no rows, which the pooling's backward pass skips whatever its width."""
    listener, pooled = model.layers
    trf_datas, backprop_listener = listener(docs, is_train)
    outputs, backprop_pooled = pooled(trf_datas, is_train)
    if any(len(output) == 0 for output in outputs):
        width = listener.get_dim("nO")
        outputs = [output if len(output) else model.ops.alloc2f(0, width) for output in outputs]

    def backprop(d_outputs: List[Floats2d]) -> List[Doc]:
        return backprop_listener(backprop_pooled(d_outputs))

    return outputs, backprop

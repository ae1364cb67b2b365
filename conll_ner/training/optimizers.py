"""Adam with layer-wise learning-rate decay for the transformer's layers.

Layer-wise decay (Howard and Ruder 2018, ULMFiT's discriminative fine-tuning;
Sun et al. 2019 for BERT; ELECTRA's recipe) gives the top encoder layer the
peak rate and each layer below it `layer_decay` times the rate of the one
above, the embeddings the least: the lower layers hold the pretrained,
language-general features that fine-tuning should move least. thinc's Adam
has one rate for every parameter, but its optimizer call takes a per-call
`lr_scale`, and spacy-transformers names each torch parameter in the key it
passes (`encoder.layer.3.attention...`, `embeddings.word_embeddings.weight`),
so a subclass that picks the scale from that name is all this needs.
`head_rate_scale` multiplies the rate of every parameter outside the encoder
(the NER model and its features, which start from random weights and
learn nothing from pretraining): a higher rate for a new task head than for
the pretrained body is a common fine-tuning setting, and the recipe probes
measure it (docs/recipes.md).
configs/transformer.cfg trains with it; the decay comes from
[layer_decay_by_encoder_size] (a decay of one, one rate for the whole
encoder, where nothing was measured), the head's factor from
[head_rate_scale_by_encoder_size] (one where nothing was measured) and the
layer count from the checkpoint, all set by the train step (docs/recipes.md).
"""

import re
from typing import Tuple

from spacy.util import registry
from thinc.optimizers import ADAM_DEFAULTS, FloatOrSeq, Optimizer
from thinc.types import FloatsXd

LAYER_DECAY_OPTIMIZER = "conll_ner.AdamWithLayerDecay.v1"
# BERT's and XLM-R's parameter names (transformers' BertModel, XLMRobertaModel)
ENCODER_LAYER = re.compile(r"(?:^|\.)layer\.(\d+)\.")
EMBEDDINGS = re.compile(r"(?:^|\.)embeddings\.")


class LayerDecayOptimizer(Optimizer):
    """thinc's Optimizer, with the learning rate of encoder layer i scaled by
    layer_decay ** (encoder_layers - 1 - i) and the embeddings' by
    layer_decay ** encoder_layers; every other parameter (the NER model, the
    pooler) gets the peak rate times head_rate_scale."""

    def __init__(
        self,
        learn_rate: FloatOrSeq,
        *,
        layer_decay: float,
        encoder_layers: int,
        head_rate_scale: float = 1.0,
        **adam_settings,
    ) -> None:
        if not 0 < layer_decay <= 1:
            raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
        if encoder_layers < 1:
            raise ValueError(f"encoder_layers must be at least 1, got {encoder_layers}")
        if head_rate_scale <= 0:
            raise ValueError(f"head_rate_scale must be positive, got {head_rate_scale}")
        super().__init__(learn_rate, **adam_settings)
        self.layer_decay = layer_decay
        self.encoder_layers = encoder_layers
        self.head_rate_scale = head_rate_scale

    def layer_scale(self, name: str) -> float:
        """The learning-rate factor of the parameter called `name`. A decay of
        one is one rate for every layer, whatever the encoder's depth: plain
        `spacy train` with the config's values then trains encoders of any
        depth."""
        if not (ENCODER_LAYER.search(name) or EMBEDDINGS.search(name)):
            return self.head_rate_scale
        if self.layer_decay == 1.0:
            return 1.0
        return self.layer_decay ** self.depth_below_top(name)

    def depth_below_top(self, name: str) -> int:
        """The layers between the top one and the encoder parameter `name`
        (the embeddings: all of them)."""
        layer = ENCODER_LAYER.search(name)
        if layer is not None:
            index = int(layer.group(1))
            if index >= self.encoder_layers:
                raise ValueError(
                    f"parameter {name!r} belongs to encoder layer {index}, but the optimizer's encoder_layers is "
                    f"{self.encoder_layers}: set training.optimizer.encoder_layers to the encoder's "
                    "num_hidden_layers (its config.json); the train step (scripts/train.py) sets it from there"
                )
            return self.encoder_layers - 1 - index
        return self.encoder_layers

    def __call__(
        self, key: Tuple[int, str], weights: FloatsXd, gradient: FloatsXd, *, lr_scale: float = 1.0
    ) -> Tuple[FloatsXd, FloatsXd]:
        return super().__call__(key, weights, gradient, lr_scale=lr_scale * self.layer_scale(key[1]))


@registry.optimizers(LAYER_DECAY_OPTIMIZER)
def create_adam_with_layer_decay(
    learn_rate: FloatOrSeq,
    *,
    layer_decay: float,
    encoder_layers: int,
    head_rate_scale: float = 1.0,
    L2: FloatOrSeq = ADAM_DEFAULTS["L2"],
    beta1: FloatOrSeq = ADAM_DEFAULTS["beta1"],
    beta2: FloatOrSeq = ADAM_DEFAULTS["beta2"],
    eps: FloatOrSeq = ADAM_DEFAULTS["eps"],
    grad_clip: FloatOrSeq = ADAM_DEFAULTS["grad_clip"],
    L2_is_weight_decay: bool = bool(ADAM_DEFAULTS["L2_is_weight_decay"]),
    use_averages: bool = True,
) -> Optimizer:
    """Adam.v1's settings and defaults, plus the decay per layer, the encoder's number of
    layers (num_hidden_layers: 12 for multilingual-e5-small, mBERT and XLM-R
    base, 6 for all-MiniLM-L6-v2) and the factor of the rate outside the encoder."""
    return LayerDecayOptimizer(
        learn_rate,
        layer_decay=layer_decay,
        encoder_layers=encoder_layers,
        head_rate_scale=head_rate_scale,
        L2=L2,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        grad_clip=grad_clip,
        L2_is_weight_decay=L2_is_weight_decay,
        use_averages=use_averages,
        use_radam=False,
    )

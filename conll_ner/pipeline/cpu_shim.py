"""CPUTransformerShim: spacy-transformers' Hugging Face shim that predicts on
the CPU in int8 where the pipeline carries an int8 encoder (in groups of
windows of one length), else with torch (in bfloat16 where the CPU computes
it natively, else in fp32, in groups of windows of similar length), and
trains in bfloat16 where native. On a GPU it
is spacy-transformers' shim. conll_ner/pipeline/transformer_model.py builds
it; the parts are the modules beside this one.

It also freezes the word embeddings of large vocabularies (on every device):
their gradient is dense (every row of a multilingual vocabulary, most of a
small multilingual encoder's parameters) and thinc's Adam then updates every
row while a batch reads a few hundred. Frozen, an update costs what it costs
on a copy trimmed to the data's pieces, and the shipped vocabulary stays
whole (why and the measurements: docs/recipes.md, docs/decisions.md).
Inside `use_params` it computes with the optimizer's parameter averages,
which thinc's own torch wrapper never applies to the encoder.

torch, srsly and spacy-transformers are imported where available: packaged
CNN pipelines carry this module too and need none of them.
"""

import contextlib
from typing import Any, Dict, Iterator, Optional

from thinc.types import ArgsKwargs

from . import cpu_features
from .bfloat16 import bfloat16_autocast, outputs_as_float32
from .int8_encoder import Int8Encoder
from .length_groups import predict_in_length_groups
from .library_internals import shim_grad_scaling, shim_mixed_precision, torch_model

try:
    import srsly
    import torch
    from spacy_transformers.data_classes import HFObjects
    from spacy_transformers.layers.hf_shim import HFShim
    from thinc.util import torch2xp, xp2torch
except ImportError:  # a CNN pipeline's environment
    torch = None
    HFShim = object

# the key of the int8 encoder in the shim's serialized message; spacy-transformers'
# own loader reads the keys it knows and ignores this one
INT8_KEY = "conll_ner_int8"


class CPUTransformerShim(HFShim):
    """spacy-transformers' Hugging Face shim with the CPU runtime described
    above. `int8_graph` is the serialized int8 encoder (ONNX) of the current
    weights or None; `int8_settings` says how it was built."""

    def __init__(
        self,
        hf_model: "HFObjects",
        *,
        mixed_precision: bool,
        grad_scaler_config: Dict[str, Any],
        int8: bool,
        bfloat16: bool,
        token_budget: int,
        freeze_word_embeddings_above: int,
    ) -> None:
        super().__init__(hf_model, mixed_precision=mixed_precision, grad_scaler_config=grad_scaler_config)
        self.int8 = int8
        self.bfloat16 = bfloat16
        self.token_budget = token_budget
        self.freeze_word_embeddings_above = freeze_word_embeddings_above
        self.int8_encoder: Optional[Int8Encoder] = None

    @property
    def int8_graph(self) -> Optional[bytes]:
        return self.int8_encoder.graph if self.int8_encoder else None

    @property
    def int8_settings(self) -> Dict[str, Any]:
        return self.int8_encoder.settings if self.int8_encoder else {}

    def set_int8_graph(self, graph: Optional[bytes], settings: Optional[Dict[str, Any]] = None) -> None:
        self.int8_encoder = Int8Encoder(graph, settings) if graph is not None else None

    # --- what the shim computes in

    def precision(self) -> str:
        """The precision this shim predicts in, here and now."""
        if self.device.type != "cpu":
            return "fp16 (mixed)" if shim_mixed_precision(self) else "fp32"
        if self.int8_session() is not None:
            return "int8"
        return "bfloat16" if self._in_bfloat16() else "fp32"

    def int8_session(self) -> Any:
        """The ONNX Runtime session of the int8 encoder, where it is to run:
        on every CPU (its 7-bit weights cannot saturate where u8 x s8 pairs
        are summed in 16-bit lanes)."""
        if self.int8_encoder is None or not self.int8:
            return None
        return self.int8_encoder.session()

    def _in_bfloat16(self) -> bool:
        return self.bfloat16 and cpu_features.cpu_computes_bfloat16()

    # --- predictions and training steps

    def predict(self, inputs: ArgsKwargs) -> Any:
        if self.device.type != "cpu":
            return super().predict(inputs)
        if self.int8_session() is not None and Int8Encoder.takes(inputs):
            return self.int8_encoder.predict(inputs, self.token_budget)
        if self._in_bfloat16():
            with bfloat16_autocast():
                return outputs_as_float32(self._predict_in_length_groups(inputs))
        return self._predict_in_length_groups(inputs)

    def _predict_in_length_groups(self, inputs: ArgsKwargs) -> Any:
        if getattr(torch_model(self).config, "output_attentions", False):
            return super().predict(inputs)  # attention maps have no rows to merge by length
        return predict_in_length_groups(super().predict, inputs, self.token_budget)

    def begin_update(self, inputs: ArgsKwargs) -> Any:
        # the weights change at this update: the int8 graph no longer has them,
        # and the dev scores while training come from torch
        self.set_int8_graph(None)
        self.freeze_large_vocabulary()
        if self.device.type != "cpu" or not self._in_bfloat16():
            return super().begin_update(inputs)
        # autocast covers the forward pass, as on CUDA; the backward pass
        # follows the recorded casts, the cast to fp32 included
        with bfloat16_autocast():
            outputs, backprop = super().begin_update(inputs)
        return outputs_as_float32(outputs), backprop

    def finish_update(self, optimizer: Any) -> None:
        """thinc's update of each parameter that has a gradient, with the
        gradient then released (None) instead of zeroed: the next backward
        pass writes a fresh one, as torch's own `zero_grad(set_to_none=True)`
        does: zeroing every gradient is a measurable share of a small
        encoder's CPU update (docs/decisions.md). Where thinc's grad scaler
        is on (mixed precision on a GPU) it decides whether an update is
        skipped, so thinc's own update runs there."""
        if self.device.type != "cpu" or shim_grad_scaling(self):
            return super().finish_update(optimizer)
        for name, parameter in torch_model(self).named_parameters():
            if parameter.grad is not None:
                weights, _ = optimizer((self.id, name), torch2xp(parameter.data), torch2xp(parameter.grad))
                parameter.data = xp2torch(weights, requires_grad=True, device=parameter.device)
                parameter.grad = None

    @contextlib.contextmanager
    def use_params(self, params: Dict[Any, Any]) -> Iterator[None]:
        """The encoder with the weights in `params` inside the block, its own
        weights again after it. thinc's optimizer keeps its parameter
        averages (use_averages) under the keys finish_update passes it,
        (shim id, parameter name), but thinc's PyTorchShim.use_params reads
        only keys "pytorch_<id>_<name>": without this, the evaluations and
        saved checkpoints of a run with averages would average the NER model
        and leave the encoder as last updated. A parameter without an
        average (frozen word embeddings) keeps its weights."""
        named = dict(torch_model(self).named_parameters())
        given = {name: params[(self.id, name)] for name in named if (self.id, name) in params}
        if not given:
            with super().use_params(params):
                yield
            return
        backup = {name: named[name].data for name in given}
        for name, weights in given.items():
            named[name].data = xp2torch(weights, device=named[name].device).clone()
        try:
            yield
        finally:
            for name, weights in backup.items():
                named[name].data = weights

    def word_embeddings(self) -> Optional["torch.Tensor"]:
        """The encoder's word-embedding matrix (Hugging Face's input embeddings)."""
        return getattr(torch_model(self).get_input_embeddings(), "weight", None)

    def freeze_large_vocabulary(self) -> None:
        """Word embeddings of more than `freeze_word_embeddings_above` rows
        get no gradient, so neither backward nor the optimizer touches them
        (thinc's shim updates only parameters with a gradient). Done before
        each update, as the model is replaced when a pipeline is loaded."""
        weight = self.word_embeddings()
        if weight is not None and weight.requires_grad and weight.shape[0] > self.freeze_word_embeddings_above:
            weight.requires_grad_(False)

    # --- serialization: the int8 graph travels with the weights

    def to_bytes(self) -> bytes:
        data = super().to_bytes()
        if self.int8_encoder is None:
            return data
        message = srsly.msgpack_loads(data)
        message[INT8_KEY] = {"graph": self.int8_encoder.graph, "settings": self.int8_encoder.settings}
        return srsly.msgpack_dumps(message)

    def from_bytes(self, bytes_data: bytes) -> "CPUTransformerShim":
        super().from_bytes(bytes_data)
        int8 = srsly.msgpack_loads(bytes_data).get(INT8_KEY)
        self.set_int8_graph(int8["graph"] if int8 else None, int8["settings"] if int8 else None)
        return self

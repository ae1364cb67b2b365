"""A pipeline's int8 encoder: its ONNX graph, the settings it was built
with, and the ONNX Runtime session that runs it.

The graph is the encoder exported to ONNX, attention and layer norms fused,
and its matrix products in int8 with 7-bit weights per channel and one
activation scale per row (conll_ner/packaging/row_int8.py). It is built
once, by an explicit step (conll_ner/packaging/int8.py, run by the package
step), and saved with the torch weights in the transformer component's
`model` file, so a loaded pipeline predicts in int8 with no export, cache or
child process. Windows of one length are encoded together, without padding:
with per-row scales each window's arithmetic is the same whatever else the
call holds, so a text's entities cannot depend on the other texts of its
batch. Graphs built before per-row scales (scaled per call) are not used:
the pipeline predicts with torch and says how to rebuild. The evidence
behind int8: docs/decisions.md.

torch and onnxruntime are imported where available: packaged CNN pipelines
carry this module too and need neither.
"""

from typing import Any, Dict, List, Optional

import numpy
from thinc.types import ArgsKwargs

from .length_groups import equal_length_groups
from .notices import say_once

try:
    import torch
except ImportError:  # a CNN pipeline's environment
    torch = None

try:  # optional: requirements-onnx.txt
    import onnxruntime
except ImportError:
    onnxruntime = None

ONNX_INSTALL_HINT = "pip install -r requirements-onnx.txt (or pip install onnxruntime onnx)"
# the `scheme` of graphs with per-row activation scales (conll_ner/packaging/row_int8.py)
ROW_SCHEME = "int8 per row"
REBUILD_HINT = "rebuild it with: spacy project run int8 . --vars.model <pipeline folder>"
# the transformer_config settings that ask the encoder for more than its last
# hidden state, which is all the int8 graph returns
EXTRA_OUTPUTS = ("output_hidden_states", "output_attentions")


class Int8Encoder:
    """The int8 graph of an encoder's current weights (serialized ONNX) and
    the settings it was built with. It owns its ONNX Runtime session, made
    on the first prediction; copies and pickles carry the graph and make a
    session of their own (a session cannot be copied)."""

    def __init__(self, graph: bytes, settings: Optional[Dict[str, Any]] = None) -> None:
        self.graph = graph
        self.settings: Dict[str, Any] = dict(settings or {})
        self._session: Any = None

    def __getstate__(self) -> Dict[str, Any]:
        return {"graph": self.graph, "settings": self.settings}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(state["graph"], state["settings"])

    def session(self) -> Any:
        """The session, or None where onnxruntime is not installed or the
        graph predates per-row scales (each said once)."""
        if self.settings.get("scheme") != ROW_SCHEME:
            say_once(
                f"the pipeline's int8 encoder scales activations per call: it predicts with torch ({REBUILD_HINT})"
            )
            return None
        if onnxruntime is None:
            say_once(f"onnxruntime is not installed: the transformer predicts with torch ({ONNX_INSTALL_HINT})")
            return None
        if self._session is None:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            options.inter_op_num_threads = 1
            self._session = onnxruntime.InferenceSession(
                self.graph,
                options,
                providers=["CPUExecutionProvider"],
                # the graph optimizations its build left out on purpose
                disabled_optimizers=self.settings.get("session", {}).get("disabled_optimizers", []),
            )
        return self._session

    @staticmethod
    def takes(inputs: ArgsKwargs) -> bool:
        """The graph takes ids and a mask; token types only as all zeros."""
        kwargs = inputs.kwargs
        token_types = kwargs.get("token_type_ids")
        return (
            not inputs.args
            and not set(kwargs) - {"input_ids", "attention_mask", "token_type_ids"}
            and (token_types is None or not bool(token_types.any()))
        )

    def predict(self, inputs: ArgsKwargs, token_budget: int) -> Any:
        """The last hidden state of a batch that `takes` accepts, as a Hugging
        Face output: one session call per group of windows of one length
        (at most `token_budget` tokens, or one window, per call), on their
        real tokens only. The rows are cut and filled in numpy: torch's
        indexing ops start its thread pool, which on few cores competes with
        ONNX Runtime's."""
        from transformers.modeling_outputs import BaseModelOutput

        session = self.session()
        ids = inputs.kwargs["input_ids"].detach().cpu().numpy().astype("int64", copy=False)
        mask = inputs.kwargs["attention_mask"].detach().cpu().numpy().astype("int64", copy=False)
        positions: List[numpy.ndarray] = [numpy.flatnonzero(row) for row in mask]
        hidden: Optional[numpy.ndarray] = None
        for rows in equal_length_groups([len(real) for real in positions], token_budget):
            feeds = {
                "input_ids": numpy.stack([ids[row, positions[row]] for row in rows]),
                "attention_mask": numpy.stack([mask[row, positions[row]] for row in rows]),
            }
            (output,) = session.run(["last_hidden_state"], feeds)
            if hidden is None:
                hidden = numpy.zeros((*ids.shape, output.shape[-1]), dtype=numpy.float32)
            for row, states in zip(rows, output):
                hidden[row, positions[row]] = states
        return BaseModelOutput(last_hidden_state=torch.from_numpy(hidden))

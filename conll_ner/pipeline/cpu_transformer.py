"""The transformer on the CPU: spacy-transformers' model with a shim that
predicts in int8 when the pipeline carries an int8 encoder, else with torch
(bfloat16 where the CPU computes it natively, else fp32), and trains in
bfloat16 where native. GPUs are left as spacy-transformers runs them.

`conll_ner.TransformerModel.v1` is `spacy-transformers.TransformerModel.v3`
(same arguments, layers and weights) whose Hugging Face shim is
`CPUTransformerShim`, built by this architecture rather than swapped into a
built object, so the settings live in the config
([components.transformer.model] cpu_*) and nothing outside the pipeline
changes.

Why each part:
- int8: the encoder exported to ONNX, attention and layer norms fused, the
  weights of its matrix products quantized to int8 per channel, activations
  quantized at run time (ONNX Runtime's dynamic quantization). It is built
  once, by an explicit step (`conll_ner.packaging.int8`, run by the package
  step), and saved with the torch weights in the component's `model` file,
  so a loaded pipeline predicts in int8 with no export, cache or child
  process; a pipeline without one never exports by itself, and a training
  step drops it (the weights change). Dynamic quantization scales the
  activations of each call by what the call holds, so the encoder is called
  once per window: a text's entities cannot depend on the other texts of
  its batch, or on padding. It runs where onnxruntime is installed and the
  CPU has VNNI or AMX: older x86 CPUs sum u8 x s8 pairs in saturating 16-bit
  lanes, which ONNX Runtime's and OpenVINO's documentation warn can cost
  accuracy.
- bfloat16: CPUs with AVX512-BF16 or AMX multiply bfloat16 2-2.5x faster
  than fp32, and it keeps fp32's exponent range, so training needs no grad
  scaling; weights, gradients and the optimizer stay fp32. thinc's shims
  autocast on CUDA only. On all-MiniLM-L6-v2 training updates ran 1.31x
  faster, losses within 0.05% of fp32's.
- length groups (torch predictions): spacy-transformers pads a batch to its
  longest window, 69% padding on CoNLL sentences at batch 128; sorted groups
  of at most `cpu_token_budget` padded tokens drop most of it. The real
  tokens get the same values.
- mixed precision: the configs ask for it, for GPUs; on the CPU thinc's grad
  scaler raises, so the shim is built without it there.
- frozen word embeddings (on every device): an encoder whose vocabulary has
  more than `freeze_word_embeddings_above` pieces trains with its word
  embeddings as they are. Their gradient is dense (all 250,002 rows of
  XLM-R's vocabulary, 96M of multilingual-e5-small's 118M parameters) and
  thinc's Adam then updates every row, while a batch reads a few hundred: on
  the CPU that cost more than the rest of the update. Frozen, an update costs
  what it costs on a copy trimmed to the data's pieces, and the shipped
  vocabulary stays whole (docs/recipes.md has the measurements and the F1).

torch and spacy-transformers are imported where available: packaged CNN
pipelines carry this module too and need neither.
"""

import warnings
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy
from spacy.language import Language
from spacy.util import registry
from thinc.api import Model, NumpyOps, get_current_ops
from thinc.types import ArgsKwargs

try:
    import srsly
    import torch
    from spacy_transformers.data_classes import HFObjects
    from spacy_transformers.layers.hf_shim import HFShim
    from spacy_transformers.layers.hf_wrapper import pt_forward
    from spacy_transformers.layers.transformer_model import TransformerModel
except ImportError:  # a CNN pipeline's environment
    torch = None
    HFShim = object

try:  # optional: requirements-onnx.txt
    import onnxruntime
except ImportError:
    onnxruntime = None

ONNX_INSTALL_HINT = "pip install -r requirements-onnx.txt (or pip install onnxruntime onnx)"
# the key of the int8 encoder in the shim's serialized message; spacy-transformers'
# own loader reads the keys it knows and ignores this one
INT8_KEY = "conll_ner_int8"
# the transformer_config settings that ask the encoder for more than its last
# hidden state, which is all the int8 graph returns
EXTRA_OUTPUTS = ("output_hidden_states", "output_attentions")


def _torch_cpu_has(*checks: str) -> bool:
    """Any of torch.cpu's feature checks (absent in older torch: False)."""
    return torch is not None and any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def cpu_computes_bfloat16() -> bool:
    """True where bfloat16 matrix products have hardware support; elsewhere
    torch emulates them, slower than fp32."""
    return _torch_cpu_has("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def cpu_computes_int8() -> bool:
    """True where int8 dot products have VNNI (AVX512-VNNI) or AMX."""
    return _torch_cpu_has("_is_vnni_supported", "_is_amx_tile_supported")


_SAID: set = set()


def say_once(message: str) -> None:
    if message not in _SAID:
        _SAID.add(message)
        warnings.warn(message, stacklevel=3)


def length_groups(lengths: Sequence[int], token_budget: int) -> List[List[int]]:
    """Row indices sorted by length and cut into groups whose padded size
    (rows x longest row) stays within `token_budget`; a longer row is a group
    of its own."""
    groups: List[List[int]] = []
    group: List[int] = []
    for row in sorted(range(len(lengths)), key=lengths.__getitem__):
        if group and (len(group) + 1) * lengths[row] > token_budget:
            groups.append(group)
            group = []
        group.append(row)
    return groups + [group] if group else groups


def _as_float32(value: Any) -> Any:
    """Cast bfloat16 outputs back: thinc hands them to numpy, which has no bfloat16."""
    if torch.is_tensor(value) and value.dtype == torch.bfloat16:
        return value.float()
    if isinstance(value, tuple):
        return tuple(_as_float32(item) for item in value)
    return value


def _outputs_as_float32(outputs: Any) -> Any:
    if isinstance(outputs, dict):  # Hugging Face ModelOutput
        for key, value in list(outputs.items()):
            outputs[key] = _as_float32(value)
        return outputs
    return _as_float32(outputs)


def _merge_groups(outputs: List[Any], groups: List[List[int]], n_rows: int, length: int) -> Any:
    """One output for the whole batch from the groups' outputs: per-token
    tensors (batch x sequence x ...) padded back to `length` with zeros,
    per-row tensors (batch x features) in their rows."""

    def merge(parts: List[Any]) -> Any:
        first = parts[0]
        if isinstance(first, tuple):
            return tuple(merge([part[i] for part in parts]) for i in range(len(first)))
        if not torch.is_tensor(first):
            return first
        shape = (n_rows, length, *first.shape[2:]) if first.dim() >= 3 else (n_rows, *first.shape[1:])
        merged = first.new_zeros(shape)
        for rows, part in zip(groups, parts):
            index = torch.tensor(rows)
            if first.dim() >= 3:
                merged[index, : part.shape[1]] = part
            else:
                merged[index] = part
        return merged

    return type(outputs[0])(**{key: merge([output[key] for output in outputs]) for key in outputs[0].keys()})


# each shim's ONNX Runtime session, made from its int8 graph on the first
# prediction; not an attribute, so that deep copies of the shim stay possible
_SESSIONS: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


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
        self.int8_graph: Optional[bytes] = None
        self.int8_settings: Dict[str, Any] = {}

    # --- what the shim computes in

    def precision(self) -> str:
        """The precision this shim predicts in, here and now."""
        if self.device.type != "cpu":
            return "fp16 (mixed)" if self._mixed_precision else "fp32"
        if self.int8_session() is not None:
            return "int8"
        return "bfloat16" if self.bfloat16 and cpu_computes_bfloat16() else "fp32"

    def int8_session(self) -> Any:
        """The ONNX Runtime session of the int8 graph, where it is to run."""
        if self.int8_graph is None or not self.int8 or not cpu_computes_int8():
            return None
        if onnxruntime is None:
            say_once(f"onnxruntime is not installed: the transformer predicts with torch ({ONNX_INSTALL_HINT})")
            return None
        if self not in _SESSIONS:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            options.inter_op_num_threads = 1
            _SESSIONS[self] = onnxruntime.InferenceSession(self.int8_graph, options, providers=["CPUExecutionProvider"])
        return _SESSIONS[self]

    def set_int8_graph(self, graph: Optional[bytes], settings: Optional[Dict[str, Any]] = None) -> None:
        self.int8_graph, self.int8_settings = graph, dict(settings or {})
        _SESSIONS.pop(self, None)

    # --- predictions and training steps

    def predict(self, inputs: ArgsKwargs) -> Any:
        if self.device.type != "cpu":
            return super().predict(inputs)
        session = self.int8_session()
        if session is not None and self._int8_takes(inputs):
            return self._predict_int8(session, inputs)
        if self.bfloat16 and cpu_computes_bfloat16():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return _outputs_as_float32(self._predict_in_length_groups(inputs))
        return self._predict_in_length_groups(inputs)

    def begin_update(self, inputs: ArgsKwargs) -> Any:
        # the weights change at this update: the int8 graph no longer has them,
        # and the dev scores while training come from torch
        self.set_int8_graph(None)
        self.freeze_large_vocabulary()
        if self.device.type != "cpu" or not (self.bfloat16 and cpu_computes_bfloat16()):
            return super().begin_update(inputs)
        # autocast covers the forward pass, as on CUDA; the backward pass
        # follows the recorded casts, the cast to fp32 included
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs, backprop = super().begin_update(inputs)
        return _outputs_as_float32(outputs), backprop

    def word_embeddings(self) -> Optional["torch.Tensor"]:
        """The encoder's word-embedding matrix (Hugging Face's input embeddings)."""
        return getattr(self._model.get_input_embeddings(), "weight", None)

    def freeze_large_vocabulary(self) -> None:
        """Word embeddings of more than `freeze_word_embeddings_above` rows
        get no gradient, so neither backward nor the optimizer touches them
        (thinc's shim updates only parameters with a gradient). Done before
        each update, as the model is replaced when a pipeline is loaded."""
        weight = self.word_embeddings()
        if weight is not None and weight.requires_grad and weight.shape[0] > self.freeze_word_embeddings_above:
            weight.requires_grad_(False)

    def _int8_takes(self, inputs: ArgsKwargs) -> bool:
        """The graph takes ids and a mask; token types only as all zeros."""
        kwargs = inputs.kwargs
        token_types = kwargs.get("token_type_ids")
        return (
            not inputs.args
            and not set(kwargs) - {"input_ids", "attention_mask", "token_type_ids"}
            and (token_types is None or not bool(token_types.any()))
        )

    def _predict_int8(self, session: Any, inputs: ArgsKwargs) -> Any:
        """One call per window, on its real tokens only. The rows are cut and
        filled in numpy: torch's indexing ops start its thread pool, which on
        few cores competes with ONNX Runtime's: on 2 cores the torch indexing
        took as long as the encoder calls themselves."""
        from transformers.modeling_outputs import BaseModelOutput

        ids = inputs.kwargs["input_ids"].detach().cpu().numpy().astype("int64", copy=False)
        mask = inputs.kwargs["attention_mask"].detach().cpu().numpy().astype("int64", copy=False)
        hidden: Optional[numpy.ndarray] = None
        for row in range(ids.shape[0]):
            positions = numpy.flatnonzero(mask[row])
            feeds = {"input_ids": ids[row, positions][None], "attention_mask": mask[row, positions][None]}
            (output,) = session.run(["last_hidden_state"], feeds)
            if hidden is None:
                hidden = numpy.zeros((*ids.shape, output.shape[-1]), dtype=numpy.float32)
            hidden[row, positions] = output[0]
        return BaseModelOutput(last_hidden_state=torch.from_numpy(hidden))

    def _predict_in_length_groups(self, inputs: ArgsKwargs) -> Any:
        kwargs = inputs.kwargs
        mask = kwargs.get("attention_mask")
        if (
            not self.token_budget
            or inputs.args
            or mask is None
            or getattr(self._model.config, "output_attentions", False)
        ):
            return super().predict(inputs)
        lengths = [int(length) for length in mask.sum(1).tolist()]
        groups = length_groups(lengths, self.token_budget)
        if len(groups) == 1 and max(lengths) == mask.shape[1]:
            return super().predict(inputs)
        outputs = []
        for rows in groups:
            index, length = torch.tensor(rows), max(lengths[row] for row in rows)
            group = {
                key: value[index, :length] if torch.is_tensor(value) and value.shape == mask.shape else value
                for key, value in kwargs.items()
            }
            outputs.append(super().predict(ArgsKwargs(args=(), kwargs=group)))
        return _merge_groups(outputs, groups, mask.shape[0], mask.shape[1])

    # --- serialization: the int8 graph travels with the weights

    def to_bytes(self) -> bytes:
        data = super().to_bytes()
        if self.int8_graph is None:
            return data
        message = srsly.msgpack_loads(data)
        message[INT8_KEY] = {"graph": self.int8_graph, "settings": self.int8_settings}
        return srsly.msgpack_dumps(message)

    def from_bytes(self, bytes_data: bytes) -> "CPUTransformerShim":
        super().from_bytes(bytes_data)
        int8 = srsly.msgpack_loads(bytes_data).get(INT8_KEY)
        self.set_int8_graph(int8["graph"] if int8 else None, int8["settings"] if int8 else None)
        return self


@registry.architectures("conll_ner.TransformerModel.v1")
def create_transformer_model(
    name: str,
    get_spans: Callable,
    tokenizer_config: Optional[Dict[str, Any]] = None,
    transformer_config: Optional[Dict[str, Any]] = None,
    mixed_precision: bool = False,
    grad_scaler_config: Optional[Dict[str, Any]] = None,
    cpu_int8: bool = True,
    cpu_bfloat16: bool = True,
    cpu_token_budget: int = 1024,
    freeze_word_embeddings_above: int = 100_000,
) -> "Model":
    """`spacy-transformers.TransformerModel.v3` with the CPU runtime.
    cpu_int8: predict through the pipeline's int8 encoder where it has one
    (built by the package step), onnxruntime is installed and the CPU has
    VNNI or AMX. cpu_bfloat16: otherwise predict, and always train, under
    bfloat16 autocast where the CPU computes it natively (false: fp32).
    cpu_token_budget: torch predictions in groups of windows of similar
    length of at most this many padded tokens (0: one call per batch).
    freeze_word_embeddings_above: train with frozen word embeddings when the
    vocabulary has more rows than this (on any device; 0: always frozen).
    Refuses a transformer_config that asks for outputs the int8 graph lacks,
    unless cpu_int8 is false."""
    tokenizer_config, transformer_config = dict(tokenizer_config or {}), dict(transformer_config or {})
    grad_scaler_config = dict(grad_scaler_config or {})
    asked = [key for key in EXTRA_OUTPUTS if transformer_config.get(key)]
    if cpu_int8 and asked:
        raise ValueError(
            f"[components.transformer.model] transformer_config asks for {', '.join(asked)}, which the int8 "
            "encoder does not compute (it returns the last hidden state only): set cpu_int8 = false to predict "
            "them with torch on the CPU"
        )
    on_cpu = isinstance(get_current_ops(), NumpyOps)
    mixed_precision = mixed_precision and not on_cpu  # thinc's grad scaler raises on the CPU
    model = TransformerModel(
        name,
        get_spans,
        tokenizer_config,
        transformer_config,
        mixed_precision=mixed_precision,
        grad_scaler_config=dict(grad_scaler_config),
    )
    shim = CPUTransformerShim(
        HFObjects(None, None, None, dict(tokenizer_config), dict(transformer_config)),
        mixed_precision=mixed_precision,
        grad_scaler_config=dict(grad_scaler_config),
        int8=cpu_int8,
        bfloat16=cpu_bfloat16,
        token_budget=cpu_token_budget,
        freeze_word_embeddings_above=freeze_word_embeddings_above,
    )
    wrapper = model.layers[0]
    # the wrapper spacy-transformers builds (HFWrapper), with this shim
    model.layers[0] = Model(
        wrapper.name, pt_forward, attrs=dict(wrapper.attrs), shims=[shim], dims={"nI": None, "nO": None}
    )
    return model


def transformer_shims(nlp: Language) -> List[Any]:
    """The PyTorch shims of the pipeline's components."""
    return [
        shim
        for _, component in nlp.pipeline
        if isinstance(getattr(component, "model", None), Model)
        for node in component.model.walk()
        for shim in node.shims
    ]


def prediction_runtime(nlp: Language) -> Dict[str, str]:
    """Where and in what precision the pipeline predicts, here and now: what
    every score the project writes names. A pipeline without a transformer,
    or with spacy-transformers' own shim, computes in fp32 (float16 with
    mixed precision on a GPU)."""
    device = "cpu" if isinstance(get_current_ops(), NumpyOps) else "gpu"
    precisions = {shim.precision() for shim in transformer_shims(nlp) if isinstance(shim, CPUTransformerShim)}
    if not precisions:
        mixed = any(getattr(shim, "_mixed_precision", False) for shim in transformer_shims(nlp))
        precisions = {"fp16 (mixed)" if mixed and device == "gpu" else "fp32"}
    return {"device": device, "precision": ", ".join(sorted(precisions))}


# ---------------------------------------------------------------------------
# pipelines trained before conll_ner.TransformerModel.v1


@registry.callbacks("conll_ner.transformer_on_cpu.v1")
def create_transformer_on_cpu(
    training: bool = True, int8: bool = True, token_budget: int = 1024
) -> Callable[[Language], Language]:
    """Named by the configs of pipelines trained before
    conll_ner.TransformerModel.v1, whose CPU runtime changed the classes of
    built shims. It now changes nothing: such a pipeline predicts as
    spacy-transformers does (fp32 on the CPU) and says how to load it with
    the CPU runtime."""

    def say_how_to_migrate(nlp: Language) -> Language:
        if any(type(shim) is HFShim for shim in transformer_shims(nlp)):
            say_once(
                "this pipeline's config names conll_ner.transformer_on_cpu.v1, the CPU runtime of pipelines before "
                "conll_ner.TransformerModel.v1: it predicts in fp32 with torch. In this project, "
                "`python scripts/int8.py <pipeline>` gives it the CPU runtime and its int8 encoder "
                "(docs/cpu-inference.md)"
            )
        return nlp

    return say_how_to_migrate


@registry.callbacks("conll_ner.bfloat16_transformer_on_cpu.v1")
def create_bfloat16_transformer_on_cpu(
    training: bool = True, token_budget: int = 1024
) -> Callable[[Language], Language]:
    """The same, for pipelines trained before int8 predictions."""
    return create_transformer_on_cpu(training=training, int8=False, token_budget=token_budget)

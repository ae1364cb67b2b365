"""Faster CPU inference: matrix products through numpy (multi-threaded BLAS),
and transformers in bfloat16 where the CPU computes it natively.

thinc's CPU ops multiply matrices with blis on one thread. On the 2-core
benchmark machine the CNN pipeline spent ~80% of its inference time in that
gemm (cProfile), and numpy's BLAS made the whole pipeline 3.7x faster
(2,900 -> 10,800 words/s). GPU ops are left alone. Like the scorer, this
module imports nothing from the rest of the project, so that it can travel
inside packaged pipelines: it runs every time a pipeline is created or loaded.

A transformer's forward pass is ~93% of the transformer pipeline's CPU time
(cProfile), nearly all of it fp32 matrix products. CPUs with AVX512-BF16 or
AMX multiply bfloat16 2-2.5x faster; thinc's shims only autocast on CUDA, so
`conll_ner.transformer_on_cpu.v1` autocasts the transformer on the CPU: its
training steps by default, and its predictions where int8 is off, the CPU's
counterpart of the mixed precision the configs ask for on GPUs. bfloat16
keeps fp32's exponent range, so it needs no grad scaling; weights, gradients
and the optimizer stay fp32. On all-MiniLM-L6-v2 training updates ran 1.31x
faster (3.09 vs 2.35 updates/s on 2 cores, 60 updates side by side), with
losses within 0.05% of fp32's.

`conll_ner.transformer_on_cpu.v1`, the configs' default, also predicts
through ONNX Runtime (`int8 = true`): the encoder exported to ONNX, attention
and layer norms fused, its matrix products' weights quantized to int8 per
channel (dynamic quantization). And it cuts every batch into groups of windows
of similar length (`token_budget`): spacy-transformers pads a batch to its
longest window, which made 69% of the encoder's input padding on CoNLL
sentences and 44% on 10-sentence documents (batch 128); groups of at most
1,024 padded tokens leave 24% and 4% (BENCHMARKS.md, `inference` mode). What int8 in length groups gives against
bfloat16 with one call per batch (the earlier default) and fp32, in words/s
and dev F1, is measured side by side on all-MiniLM-L6-v2 fine-tuned on
CoNLL-2003: see BENCHMARKS.md, `inference` mode. torch's own `quantize_dynamic` lost 0.6 F1 at
bfloat16's speed, and its quantized weights cannot be saved, so it is not
used. The torch weights stay as they are: saving a pipeline saves them, and
without onnxruntime it predicts with torch. The graph is built once per
pipeline and machine, in a child process (its peak memory is about ten times
the encoder's fp32 weights), and cached.
"""

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

from spacy.language import Language
from spacy.util import registry
from thinc.api import Model, NumpyOps, get_current_ops, set_current_ops
from thinc.shims import PyTorchGradScaler, PyTorchShim
from thinc.types import ArgsKwargs

try:  # CNN pipelines are packaged with this module and do not need torch
    import torch
except ImportError:
    torch = None

try:  # optional: requirements-onnx.txt
    import onnxruntime
except ImportError:
    onnxruntime = None

ONNX_INSTALL_HINT = "pip install -r requirements-onnx.txt (or pip install onnxruntime onnx)"


@registry.callbacks("conll_ner.numpy_matmul_on_cpu.v1")
def create_numpy_matmul_on_cpu() -> Callable[[type], type]:
    def use_numpy_matmul(lang_cls: type) -> type:
        ops = get_current_ops()
        if type(ops) is NumpyOps and ops.use_blis:
            set_current_ops(NumpyOps(use_blis=False))
        return lang_cls

    return use_numpy_matmul


def _torch_cpu_has(*checks: str) -> bool:
    """Any of torch.cpu's feature checks (absent in older torch: False)."""
    return torch is not None and any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def cpu_computes_bfloat16() -> bool:
    """True where bfloat16 matrix products have hardware support; elsewhere
    torch emulates them, slower than fp32."""
    return _torch_cpu_has("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def cpu_computes_int8() -> bool:
    """True where int8 dot products have VNNI (AVX512-VNNI) or AMX. Older x86
    CPUs (AVX2, AVX-512 without VNNI) sum u8 x s8 pairs in saturating 16-bit
    lanes, which ONNX Runtime's and OpenVINO's documentation warn can cost
    dynamically quantized models accuracy; there the transformer predicts
    with torch."""
    return _torch_cpu_has("_is_vnni_supported", "_is_amx_tile_supported")


def as_float32(value: Any) -> Any:
    """Cast bfloat16 outputs back: thinc hands them to numpy, which has no bfloat16."""
    if torch.is_tensor(value) and value.dtype == torch.bfloat16:
        return value.float()
    if isinstance(value, tuple):
        return tuple(as_float32(item) for item in value)
    return value


def outputs_as_float32(outputs: Any) -> Any:
    if isinstance(outputs, dict):  # Hugging Face ModelOutput
        for key, value in list(outputs.items()):
            outputs[key] = as_float32(value)
        return outputs
    return as_float32(outputs)


class BFloat16PredictOnCPU:
    """Shim mixin: predict under CPU bfloat16 autocast; GPU predictions and
    training steps are unchanged."""

    def predict(self, inputs: Any) -> Any:
        if self.device.type != "cpu":
            return super().predict(inputs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return outputs_as_float32(super().predict(inputs))


class BFloat16TrainOnCPU(BFloat16PredictOnCPU):
    """Shim mixin: training steps under CPU bfloat16 autocast too. Autocast
    covers the forward pass only, as on CUDA; the backward pass follows the
    recorded casts, and the cast of the outputs to fp32 is part of the graph,
    so thinc's fp32 gradients flow back through it."""

    def begin_update(self, inputs: Any) -> Any:
        if self.device.type != "cpu":
            return super().begin_update(inputs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs, backprop = super().begin_update(inputs)
        return outputs_as_float32(outputs), backprop


# ---------------------------------------------------------------------------
# batches cut into groups of windows of similar length


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


class LengthGroupedPredictOnCPU:
    """Shim mixin: predict a batch in groups of windows of similar length.
    spacy-transformers pads every window of a batch to the longest one; on
    CoNLL sentences that made 69% of the encoder's input padding (batch 128).
    Sorted groups of at most `_cpu_token_budget` padded tokens drop most of
    it. The encoder computes the same values for the real tokens; in int8 they
    move within quantization noise, as dynamic quantization scales the
    activations of each call by the rows it holds. 0 turns it off."""

    _cpu_token_budget = 0

    def predict(self, inputs: Any) -> Any:
        kwargs = inputs.kwargs
        mask = kwargs.get("attention_mask")
        if (
            self.device.type != "cpu"
            or not self._cpu_token_budget
            or inputs.args
            or mask is None
            or getattr(self._model.config, "output_attentions", False)
        ):
            return super().predict(inputs)
        lengths = [int(length) for length in mask.sum(1).tolist()]
        groups = length_groups(lengths, self._cpu_token_budget)
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


# ---------------------------------------------------------------------------
# int8 predictions through ONNX Runtime

# the int8 session of each shim, built from its weights on its first
# prediction, or None where the shim predicts with torch (it has trained in
# this process, or its graph could not be built); not an attribute, so that
# deep copies of the shim stay possible
_INT8_SESSIONS: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()
_SAID: set = set()


def say_once(message: str) -> None:
    if message not in _SAID:
        _SAID.add(message)
        warnings.warn(message, stacklevel=3)


def int8_cache_dir() -> Path:
    """Where int8 graphs are kept between loads: CONLL_NER_CACHE, else the
    user's cache folder."""
    base = os.environ.get("CONLL_NER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "conll_ner"
    )
    return Path(base) / "onnx_int8"


def weights_digest(module: "torch.nn.Module") -> str:
    """SHA-256 of the weights and of the versions that shape the graph: a
    retrained or updated pipeline never reuses another's graph."""
    digest = hashlib.sha256(f"{torch.__version__} {onnxruntime.__version__} {type(module).__name__}".encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode("utf8") + b"\0")
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class _LastHiddenState(torch.nn.Module if torch is not None else object):
    """The encoder with the two inputs spacy-transformers gives every model,
    returning the one output it reads."""

    def __init__(self, encoder: "torch.nn.Module") -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: "torch.Tensor", attention_mask: "torch.Tensor") -> "torch.Tensor":
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state


def export_int8_graph(module: "torch.nn.Module", path: Path) -> None:
    """Export the encoder to ONNX, fuse attention and layer norms with ONNX
    Runtime's transformer optimizer, then quantize the weights of its matrix
    products to int8 per channel, dynamically: static int8 (calibrated
    activations) is known to wreck NER encoders, dynamic int8 kept
    all-MiniLM-L6-v2's dev F1 within 0.2 of fp32 (see BENCHMARKS.md,
    `inference` mode). It switches the module to fp32 and
    eager attention, so it is given a copy of its own. Written to a temporary
    name, renamed when whole."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    encoder = module.float().eval()
    # the plain matmul-softmax attention is the pattern the optimizer fuses
    # (the module is the child's own copy: see export_saved_encoder)
    encoder.config._attn_implementation = "eager"
    ids = torch.randint(5, min(100, encoder.config.vocab_size), (2, 9))  # small vocabularies too
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        fp32, fused = Path(tmp) / "fp32.onnx", Path(tmp) / "fused.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(
                _LastHiddenState(encoder),
                (ids, mask),
                str(fp32),
                dynamo=False,
                opset_version=17,
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask", "last_hidden_state")
                },
            )
        config = encoder.config
        optimize_model(
            str(fp32),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            opt_level=1,
            use_gpu=False,
        ).save_model_to_file(str(fused))
        quantized = Path(tmp) / "int8.onnx"
        logging.disable(logging.WARNING)  # the quantizer's advice on image models, on the root logger
        try:
            quantize_dynamic(
                str(fused),
                str(quantized),
                per_channel=True,
                weight_type=QuantType.QInt8,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        finally:
            logging.disable(logging.NOTSET)
        os.replace(quantized, path)


def export_saved_encoder(folder: str, path: str) -> None:
    """The child's side of `export_int8_graph_in_child`."""
    from transformers import AutoModel

    export_int8_graph(AutoModel.from_pretrained(folder), Path(path))


def export_int8_graph_in_child(module: "torch.nn.Module", path: Path) -> None:
    """`export_int8_graph` in a process of its own, from the weights saved to
    a temporary folder. At its peak the export takes about ten times the
    encoder's fp32 size in memory (13.9 GB for BERT-large's 1.3 GB, mostly
    ONNX Runtime's graph optimizer) and a process keeps much of it afterwards;
    a child gives it all back, and running out of memory ends the child, not
    the pipeline's process."""
    print(f"Building the transformer's int8 graph, once per pipeline and machine: {path}", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as folder:
        module.save_pretrained(folder)
        # this file travels inside packages under other names: the child loads it by path
        code = (
            "import importlib.util, sys; spec = importlib.util.spec_from_file_location('conll_ner_int8_export', "
            "sys.argv[1]); module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
            "module.export_saved_encoder(sys.argv[2], sys.argv[3])"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, __file__, folder, str(path)], capture_output=True, text=True
        )
    if result.returncode != 0:
        killed = " (killed: out of memory?)" if result.returncode in (-9, 137) else ""
        raise RuntimeError(
            f"the process building it exited with {result.returncode}{killed}: {result.stderr[-300:].strip()}"
        )


# ONNX files hold at most 2 GB without external data; a trial export of
# XLM-R large (2.2 GB in fp32) with external data went over 24 GB of memory
INT8_MAX_WEIGHT_BYTES = 2 * 1024**3


def int8_session(module: "torch.nn.Module") -> Any:
    size = sum(tensor.numel() * tensor.element_size() for tensor in module.state_dict().values())
    if size >= INT8_MAX_WEIGHT_BYTES:
        raise ValueError(
            f"its weights take {size / 1024**3:.1f} GB, over the 2 GB of an ONNX file without "
            "external data, whose export needs many times that in memory"
        )
    path = int8_cache_dir() / f"{weights_digest(module)}.onnx"
    if not path.is_file():
        export_int8_graph_in_child(module, path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Int8PredictOnCPU:
    """Shim mixin: predict through an ONNX Runtime int8 graph of the current
    weights, built on the first prediction (and kept in the cache folder for
    the next load); loading or updating weights drops it. Without
    onnxruntime, or for inputs the graph does not take (a second segment's
    token type ids), the next class in line predicts: bfloat16 or fp32."""

    def predict(self, inputs: Any) -> Any:
        kwargs = inputs.kwargs
        token_types = kwargs.get("token_type_ids")
        if (
            self.device.type != "cpu"
            or inputs.args
            or set(kwargs) - {"input_ids", "attention_mask", "token_type_ids"}
            or (token_types is not None and bool(token_types.any()))
        ):
            return super().predict(inputs)
        if onnxruntime is None:
            say_once(f"onnxruntime is not installed: the transformer predicts with torch ({ONNX_INSTALL_HINT})")
            return super().predict(inputs)
        if self not in _INT8_SESSIONS:
            try:
                _INT8_SESSIONS[self] = int8_session(self._model)
            except Exception as err:  # an encoder the exporter or optimizer cannot take
                say_once(f"no int8 graph for this transformer ({type(err).__name__}: {err}): it predicts with torch")
                _INT8_SESSIONS[self] = None
        session = _INT8_SESSIONS[self]
        if session is None:
            return super().predict(inputs)
        from transformers.modeling_outputs import BaseModelOutput

        feeds = {
            name: kwargs[name].detach().cpu().numpy().astype("int64", copy=False)
            for name in ("input_ids", "attention_mask")
        }
        (hidden,) = session.run(["last_hidden_state"], feeds)
        return BaseModelOutput(last_hidden_state=torch.from_numpy(hidden))

    def begin_update(self, inputs: Any) -> Any:
        # dev scores while training come from torch: the weights change at every update
        _INT8_SESSIONS[self] = None
        return super().begin_update(inputs)

    def from_bytes(self, bytes_data: bytes) -> Any:
        _INT8_SESSIONS.pop(self, None)
        return super().from_bytes(bytes_data)


# ---------------------------------------------------------------------------
# the callbacks that configs name

_CPU_SHIM_CLASSES: Dict[Tuple[type, ...], type] = {}


def cpu_shim_class(shim_class: type, mixins: Tuple[type, ...]) -> type:
    """The shim class with the mixins before it, one class per combination.
    Swapping the class of the shim object keeps working after `from_disk`,
    which loads new weights into the same shim, and through deep copies."""
    key = (shim_class, *mixins)
    if key not in _CPU_SHIM_CLASSES:
        name = "".join(mixin.__name__ for mixin in mixins) + shim_class.__name__
        _CPU_SHIM_CLASSES[key] = type(name, (*mixins, shim_class), {})
    return _CPU_SHIM_CLASSES[key]


@registry.callbacks("conll_ner.transformer_on_cpu.v1")
def create_transformer_on_cpu(
    training: bool = True, int8: bool = True, token_budget: int = 1024
) -> Callable[[Language], Language]:
    """Transformer precision on the CPU. Predictions: with `int8`, through an
    ONNX Runtime int8 graph on CPUs with VNNI or AMX (onnxruntime installed;
    else as without it); otherwise in bfloat16 where the CPU computes it
    natively, else fp32; with `token_budget`, in groups of windows of similar
    length of at most that many padded tokens (0: one encoder call per
    batch). Training steps: with
    `training`, in bfloat16 where native, else fp32 (dev scores during
    training too). The configs ask for mixed precision, which GPUs train
    with; on the CPU thinc's grad scaler raises ("Gradient scaling is not
    supported"), so it is switched off there, and `spacy train` works on the
    CPU with the config as it is. GPUs are left alone."""

    def use_cpu_precision(nlp: Language) -> Language:
        if not isinstance(get_current_ops(), NumpyOps):
            return nlp  # GPU: mixed precision as configured
        mixins: Tuple[type, ...] = (LengthGroupedPredictOnCPU,) if token_budget else ()
        if int8 and cpu_computes_int8():
            mixins += (Int8PredictOnCPU,)
        if cpu_computes_bfloat16():
            mixins += (BFloat16TrainOnCPU if training else BFloat16PredictOnCPU,)
        ours = (LengthGroupedPredictOnCPU, BFloat16PredictOnCPU, Int8PredictOnCPU)
        for _, component in nlp.pipeline:
            if not isinstance(getattr(component, "model", None), Model):
                continue
            for node in component.model.walk():
                for shim in node.shims:
                    if not isinstance(shim, PyTorchShim):
                        continue
                    if shim._mixed_precision:
                        shim._mixed_precision = False
                        shim._grad_scaler = PyTorchGradScaler(enabled=False)
                    if mixins and not isinstance(shim, ours):
                        shim.__class__ = cpu_shim_class(type(shim), mixins)
                        shim._cpu_token_budget = token_budget
        return nlp

    return use_cpu_precision


@registry.callbacks("conll_ner.bfloat16_transformer_on_cpu.v1")
def create_bfloat16_transformer_on_cpu(
    training: bool = True, token_budget: int = 1024
) -> Callable[[Language], Language]:
    """The callback of pipelines trained before int8 predictions: bfloat16
    (or fp32) predictions and training steps."""
    return create_transformer_on_cpu(training=training, int8=False, token_budget=token_budget)

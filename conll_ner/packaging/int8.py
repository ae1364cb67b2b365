"""Build a pipeline's int8 encoder, once, into the pipeline itself.

The encoder is exported to ONNX, its attention and layer norms fused by ONNX
Runtime's transformer optimizer (attention as MultiHeadAttention, whose
query, key and value products stay separate matrix products), every matrix
product with a weight rewritten into int8 with one activation scale per row
(conll_ner/packaging/row_int8.py), and the embedding tables stored in uint8
(ONNX Runtime's `quantize_dynamic` for that op alone: a lookup with fixed
scales). A window's result then does not depend on the other windows of a
call, so windows of one length are encoded together, and the 7-bit weights
cannot saturate on CPUs without VNNI, so the same graph serves every x86
CPU. Optimum would do the export, but its
last release for transformers <4.54 (optimum 1.27) cannot be imported
beside torch 2.13 (`ImportError: cannot import name '_attention_scale'`), so
ONNX Runtime's own tools do it. Why not ONNX Runtime's dynamic or static
quantization, or torch's: docs/decisions.md, "The CPU runtime".

The export runs in a child process: at its peak it takes many times the
encoder's fp32 size in memory (mostly the graph optimizer; measured in
docs/decisions.md), a process keeps much of it afterwards, and running out
of memory then ends the child, not the caller. The graph is stored in the
transformer component's `model` file beside the torch weights
(conll_ner/pipeline/int8_encoder.py), so it travels inside the pipeline
and its wheel, with the settings it was built with.
"""

import logging
import os
import subprocess
import sys
import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import spacy
import torch
from spacy.language import Language
from spacy.util import load_config

from conll_ner.files import atomic_folder
from conll_ner.packaging import row_int8
from conll_ner.pipeline.cpu_shim import CPUTransformerShim
from conll_ner.pipeline.int8_encoder import EXTRA_OUTPUTS, ONNX_INSTALL_HINT, ROW_SCHEME
from conll_ner.pipeline.library_internals import torch_model, use_eager_attention
from conll_ner.pipeline.prediction_runtime import transformer_shims

if TYPE_CHECKING:  # onnx is optional (requirements-onnx.txt)
    import onnx

# ONNX files hold at most 2 GB without external data, and an export with
# external data needs many times the encoder's size in memory (docs/decisions.md)
INT8_MAX_WEIGHT_BYTES = 2 * 1024**3
OPSET = 17
OPTIMIZER_LEVEL = 1
OUR_ARCHITECTURE = "conll_ner.TransformerModel.v1"
# how the session that runs the graph is to be made (Int8Encoder reads it
# from the graph's settings): ONNX Runtime would fuse the layer norms the
# build keeps apart again when it loads the graph
SESSION_SETTINGS = {"disabled_optimizers": ["SkipLayerNormFusion"]}
LEGACY_ARCHITECTURE = "spacy-transformers.TransformerModel.v3"


def int8_tools_missing() -> Optional[str]:
    """What the build lacks, in words, or None."""
    for module in ("onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed ({ONNX_INSTALL_HINT})"
    return None


def export_settings() -> Dict[str, Any]:
    """What the graph is built with: stored beside it, shown on the card."""
    return {
        "exporter": f"torch.onnx.export (TorchScript), opset {OPSET}, converted to opset {row_int8.OPSET}",
        "optimizer": (
            f"onnxruntime.transformers optimize_model, model_type bert, opt_level {OPTIMIZER_LEVEL}, "
            "attention as MultiHeadAttention, no SkipLayerNormalization"
        ),
        "session": SESSION_SETTINGS,
        "scheme": ROW_SCHEME,
        "quantization": f"{row_int8.DESCRIPTION}; embedding tables uint8 (onnxruntime quantize_dynamic)",
        "versions": {name: version(name) for name in ("torch", "transformers", "onnx", "onnxruntime")},
    }


class LastHiddenState(torch.nn.Module):
    """The encoder with the two inputs spacy-transformers gives every model,
    returning the one output it reads."""

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: Any, attention_mask: Any) -> Any:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state


def fused_fp32_graph(encoder: Any, folder: Path) -> "onnx.ModelProto":
    """The encoder exported to ONNX (through a file in `folder`), its
    attention and layer norms fused, at the opset row_int8 writes: the fp32
    graph whose products `export_int8_graph` quantizes. It switches the
    encoder to fp32 and eager attention, the plain matmul-softmax pattern
    the optimizer fuses, so it is given a copy of its own."""
    from onnx import version_converter
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    encoder = encoder.float().eval()
    use_eager_attention(encoder.config)
    ids = torch.randint(5, min(100, encoder.config.vocab_size), (2, 9))  # small vocabularies too
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    fp32 = folder / "fp32.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            LastHiddenState(encoder),
            (ids, mask),
            str(fp32),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask", "last_hidden_state")
            },
        )
    fusion = FusionOptions("bert")
    fusion.use_multi_head_attention = True  # keeps the query, key and value products for row_int8
    # residual adds stay apart from their layer norms, as does the session
    # (SESSION_SETTINGS): ONNX Runtime's fused SkipLayerNormalization ran
    # slower than Add + LayerNormalization on the CPU (docs/decisions.md)
    fusion.enable_skip_layer_norm = False
    fusion.enable_bias_skip_layer_norm = False
    logging.disable(logging.WARNING)  # the optimizer's notes on fusions it did not find, on the root logger
    try:
        fused = optimize_model(
            str(fp32),
            model_type="bert",
            num_heads=encoder.config.num_attention_heads,
            hidden_size=encoder.config.hidden_size,
            opt_level=OPTIMIZER_LEVEL,
            optimization_options=fusion,
            use_gpu=False,
        ).model
    finally:
        logging.disable(logging.NOTSET)
    # the TorchScript exporter writes opsets up to 20; row_int8 needs 21
    return version_converter.convert_version(fused, row_int8.OPSET)


def save_with_uint8_embeddings(graph: "onnx.ModelProto", path: Path) -> None:
    """`graph` saved to `path` with its embedding tables (most of a
    multilingual encoder's weights) in uint8 with fixed scales: a lookup,
    the same whatever else the call holds (ONNX Runtime's
    `quantize_dynamic` for that op alone)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        products, quantized = Path(tmp) / "products.onnx", Path(tmp) / "int8.onnx"
        onnx.save(graph, str(products))
        logging.disable(logging.WARNING)  # the quantizer's advice on image models, on the root logger
        try:
            quantize_dynamic(
                str(products),
                str(quantized),
                op_types_to_quantize=["EmbedLayerNormalization"],
                weight_type=QuantType.QUInt8,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        finally:
            logging.disable(logging.NOTSET)
        os.replace(quantized, path)


def export_int8_graph(encoder: Any, path: Path, weight_level: int = row_int8.WEIGHT_LEVEL) -> None:
    """Export, fuse and quantize (see the module's docstring) into `path`;
    the encoder is switched to fp32 and eager attention (`fused_fp32_graph`)."""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        fused = fused_fp32_graph(encoder, Path(tmp))
    if not row_int8.quantize_rows(fused, weight_level):
        raise ValueError("its exported graph has no matrix product with a weight to quantize")
    save_with_uint8_embeddings(fused, path)


def export_saved_encoder(folder: str, path: str) -> None:
    """The child's side of `export_in_child`."""
    from transformers import AutoModel

    export_int8_graph(AutoModel.from_pretrained(folder), Path(path))


def export_in_child(encoder: Any) -> bytes:
    """`export_int8_graph` in a process of its own, from the weights saved to
    a temporary folder; the graph's bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        encoder.save_pretrained(tmp)
        path = Path(tmp) / "int8.onnx"
        code = "import sys; from conll_ner.packaging.int8 import export_saved_encoder as e; e(sys.argv[1], sys.argv[2])"
        result = subprocess.run([sys.executable, "-c", code, tmp, str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            killed = " (killed: out of memory?)" if result.returncode in (-9, 137) else ""
            raise RuntimeError(
                f"the process building the int8 encoder exited with {result.returncode}{killed}: "
                f"{result.stderr[-300:].strip()}"
            )
        return path.read_bytes()


def add_int8_encoder(nlp: Language) -> List[Dict[str, Any]]:
    """Build the int8 encoder of every transformer of the pipeline into its
    shim; the settings of each. Raises ValueError, saying why, for a pipeline
    it cannot serve."""
    shims = [shim for shim in transformer_shims(nlp) if isinstance(shim, CPUTransformerShim)]
    if not shims:
        raise ValueError(f"it has no transformer built by {OUR_ARCHITECTURE} (a CNN pipeline needs no int8 encoder)")
    built = []
    for shim in shims:
        encoder = torch_model(shim)
        config = encoder.config
        asked = [key for key in EXTRA_OUTPUTS if getattr(config, key, False)]
        if asked:
            raise ValueError(f"its encoder is configured to return {', '.join(asked)}, which the int8 graph lacks")
        size = sum(tensor.numel() * tensor.element_size() for tensor in encoder.state_dict().values())
        if size >= INT8_MAX_WEIGHT_BYTES:
            raise ValueError(
                f"its encoder's weights take {size / 1024**3:.1f} GB, over the 2 GB of an ONNX file without "
                "external data, whose export needs many times that in memory"
            )
        settings = export_settings()
        shim.set_int8_graph(export_in_child(encoder), settings)
        built.append(settings)
    return built


def load_for_int8(pipeline: Path) -> Language:
    """The pipeline, with this project's transformer architecture where its
    config names spacy-transformers' own (pipelines trained before it: same
    arguments and weights), and the callbacks of this project's configs
    instead of theirs (numpy products for the pipeline's layers, not the
    whole process; no CPU callback)."""
    config = load_config(pipeline / "config.cfg")
    overrides: Dict[str, Any] = {}
    for name, component in config["components"].items():
        if component.get("model", {}).get("@architectures") == LEGACY_ARCHITECTURE:
            overrides[f"components.{name}.model.@architectures"] = OUR_ARCHITECTURE
    if overrides:
        overrides["nlp.after_pipeline_creation"] = {"@callbacks": "conll_ner.numpy_matmul_on_cpu.v2"}
        overrides["nlp.before_creation"] = None
    return spacy.load(pipeline, config=overrides)


def write_int8_pipeline(pipeline: Path, output: Path) -> List[Dict[str, Any]]:
    """`pipeline` with its int8 encoder, written to `output` (which may be
    `pipeline` itself) through `atomic_folder`: a failed build leaves the
    old folder as it was."""
    nlp = load_for_int8(pipeline)
    settings = add_int8_encoder(nlp)
    with atomic_folder(output) as staging:
        nlp.to_disk(staging)
    return settings

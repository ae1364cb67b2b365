"""Is this machine's GPU install usable for training? One line per check.

A GPU install can look fine and still fail at the first kernel: torch and
cupy built for different CUDA majors, a driver too old for the CUDA that the
wheels were built with, or NVRTC and cuBLAS (which cupy loads only when it
first compiles a kernel or multiplies matrices) missing. Each check exercises
one of those layers the way training does, in about a minute, and a failing
check does not stop the others, so one report names every broken layer. Where
torch sees no GPU at all, the later checks are skipped: they would only fail
for the same reason.
"""

import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, TextIO, Tuple
from uuid import uuid4

OK = "ok"
FAILED = "failed"
SKIPPED = "skipped"

# A check returns what it found, for the report, or raises with the reason it failed.
Check = Tuple[str, Callable[[], str]]

# Texts and their entities for the training step
TRAIN = [
    ("Peter Blackburn met EU officials in Brussels .", {"Peter Blackburn": "PER", "EU": "ORG", "Brussels": "LOC"}),
    (
        "Germany 's representative to the European Union was Werner Zwingmann .",
        {"Germany": "LOC", "European Union": "ORG", "Werner Zwingmann": "PER"},
    ),
    ("Reuters reported from London on Friday .", {"Reuters": "ORG", "London": "LOC"}),
]
MAX_DETAIL = 500


class NoGPU(RuntimeError):
    """Raised by a check that finds no GPU: the checks after it are skipped."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    detail: str


def describe_error(err: BaseException) -> str:
    """The exception as one line: its type and its message, whitespace collapsed
    (compiler logs span many lines), cut to MAX_DETAIL characters."""
    message = " ".join(str(err).split())
    text = f"{type(err).__name__}: {message}" if message else type(err).__name__
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def run_checks(checks: Iterable[Check]) -> Iterator[CheckResult]:
    """Each check's result as soon as it is known."""
    no_gpu: Optional[str] = None
    for name, check in checks:
        if no_gpu is not None:
            yield CheckResult(name, SKIPPED, f"no GPU (see {no_gpu!r})")
            continue
        try:
            yield CheckResult(name, OK, check())
        except NoGPU as err:
            no_gpu = name
            yield CheckResult(name, FAILED, str(err))
        except Exception as err:  # a broken install fails in any way; report it and go on
            yield CheckResult(name, FAILED, describe_error(err))


def format_result(result: CheckResult) -> str:
    return f"{result.status:<7} {result.name}: {result.detail}"


def report(checks: Iterable[Check], out: TextIO) -> int:
    """Print one line per check as it finishes; the exit code: 0 if all passed."""
    results: List[CheckResult] = []
    for result in run_checks(checks):
        print(format_result(result), file=out, flush=True)
        results.append(result)
    return 0 if results and all(result.status == OK for result in results) else 1


def nvidia_driver_version() -> Optional[str]:
    """The loaded NVIDIA kernel driver's version (Linux), read without CUDA."""
    try:
        line = Path("/proc/driver/nvidia/version").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    words = line.split()
    return next((word for word in words if word[:1].isdigit() and "." in word), None)


def check_torch(gpu_id: int) -> str:
    import torch

    driver = nvidia_driver_version()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # torch warns here when the driver is too old for its CUDA
        available = torch.cuda.is_available()
        count = torch.cuda.device_count() if available else 0
    if gpu_id >= count:
        if torch.version.cuda is None:
            reason = f"torch {torch.__version__} is a CPU-only build (install requirements-gpu.txt)"
        else:
            reason = f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees {count} GPU(s), no GPU {gpu_id}"
        reasons = [reason, f"NVIDIA driver {driver}" if driver else "no NVIDIA driver loaded"]
        if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
            reasons.append(f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r}")
        reasons.extend(" ".join(str(warning.message).split()) for warning in caught)
        raise NoGPU("; ".join(reasons))
    name = torch.cuda.get_device_name(gpu_id)
    major, minor = torch.cuda.get_device_capability(gpu_id)
    return (
        f"{name} (compute capability {major}.{minor}), torch {torch.__version__} built for CUDA "
        f"{torch.version.cuda}, NVIDIA driver {driver or 'version unknown'}"
    )


def cuda_version(number: int) -> str:
    """CUDA's integer versions (13000) as 13.0."""
    return f"{number // 1000}.{number % 1000 // 10}"


def check_cupy_kernel(gpu_id: int) -> str:
    import cupy

    with cupy.cuda.Device(gpu_id):
        # The preamble makes the source new to cupy's on-disk kernel cache, so
        # that NVRTC really compiles it on every run.
        kernel = cupy.ElementwiseKernel(
            "float32 x, float32 y", "float32 z", "z = x * y + 1.0f", "conll_ner_check", preamble=f"// {uuid4().hex}"
        )
        x = cupy.arange(1024, dtype="float32")
        result = cupy.asnumpy(kernel(x, x))
        if not (result == cupy.asnumpy(x) ** 2 + 1).all():
            raise RuntimeError("the compiled kernel computed wrong values")
        runtime = cupy.cuda.runtime.runtimeGetVersion()
        driver = cupy.cuda.runtime.driverGetVersion()
        nvrtc = ".".join(str(part) for part in cupy.cuda.nvrtc.getVersion())
    return (
        f"cupy {cupy.__version__} for CUDA {cuda_version(runtime)}, kernel compiled with NVRTC {nvrtc} and run; "
        f"the driver supports CUDA {cuda_version(driver)}"
    )


def check_cublas_gemm(gpu_id: int) -> str:
    import numpy
    from thinc import compat

    if compat.cupy is None:
        # thinc swallows cupy's import errors; importing it again shows the reason
        import cupy.cublas  # noqa: F401

        raise RuntimeError("thinc could not import cupy")
    from thinc.api import CupyOps

    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((64, 48), dtype="float32")
    b = rng.standard_normal((48, 32), dtype="float32")
    with compat.cupy.cuda.Device(gpu_id):
        ops = CupyOps()
        product = ops.to_numpy(ops.gemm(ops.asarray2f(a), ops.asarray2f(b)))
    difference = float(numpy.abs(product - a @ b).max())
    if difference > 1e-3:
        raise RuntimeError(f"the product differs from numpy's by up to {difference:.2g}")
    return f"64x48 @ 48x32 through thinc CupyOps.gemm matches numpy (max difference {difference:.1g})"


def entity_offsets(text: str, entities: Dict[str, str]) -> List[Tuple[int, int, str]]:
    return [(text.index(span), text.index(span) + len(span), label) for span, label in entities.items()]


# A constant learning rate for the check's few updates: the config's schedule warms up from 0, so in
# its first updates nothing would change and a broken update would go unnoticed (the first GPU run
# reported the same NER loss before and after its updates)
CHECK_LEARN_RATE = 1e-3
# The check's updates, and how many losses at each end of them it compares. A
# tiny random pipeline's NER loss is noisy in its first updates (it rose after
# 3 updates in some CPU runs, and the runs are not repeatable: the tiny
# tokenizer's training and thinc's initialization differ between calls), but
# over 12 its trend is clear.
CHECK_UPDATES = 12
LOSS_ENDS = 3


def loss_fell(losses: Sequence[float]) -> bool:
    """Whether the mean of the last LOSS_ENDS losses is below the mean of the first."""
    first, last = losses[:LOSS_ENDS], losses[-LOSS_ENDS:]
    return sum(last) / len(last) < sum(first) / len(first)


def train_tiny_pipeline(config_path: Path, encoder: Path, updates: int, mixed_precision: bool):
    """A transformer+ner pipeline of the config, with the tiny BERT at `encoder` and a constant learning
    rate, trained for `updates` updates on TRAIN on the current device; returns it, its ner losses
    and its predictions on TRAIN. Apart from the GPU, so that the tests run it on the CPU."""
    from spacy.training import Example
    from spacy.util import load_config, load_model_from_config

    from .checkpoints import check_checkpoint, check_no_trusted_remote_code

    overrides = {
        "components.transformer.model.name": str(encoder),
        "components.transformer.model.mixed_precision": mixed_precision,
    }
    config = load_config(config_path, overrides=overrides, interpolate=True)
    config["training"]["optimizer"]["learn_rate"] = CHECK_LEARN_RATE
    # what the train step refuses, the check refuses too
    check_no_trusted_remote_code(config, str(config_path))
    check_checkpoint(str(encoder))
    nlp = load_model_from_config(config)
    examples = [
        Example.from_dict(nlp.make_doc(text), {"entities": entity_offsets(text, entities)}) for text, entities in TRAIN
    ]
    optimizer = nlp.initialize(lambda: examples)
    losses = [nlp.update(examples, sgd=optimizer)["ner"] for _ in range(updates)]
    return nlp, losses, list(nlp.pipe(text for text, _ in TRAIN))


def check_pipeline(config_path: Path, gpu_id: int, updates: int = CHECK_UPDATES) -> str:
    import spacy
    from spacy.util import load_config
    from thinc.api import set_gpu_allocator

    from ..pipeline.library_internals import shim_grad_scaling, shim_mixed_precision, torch_model
    from .tiny_bert import build_tiny_bert

    with tempfile.TemporaryDirectory() as tmp:
        encoder = build_tiny_bert(Path(tmp) / "tiny-bert", [" ".join(text for text, _ in TRAIN)] * 3)
        spacy.require_gpu(gpu_id)
        set_gpu_allocator(load_config(config_path)["system"]["gpu_allocator"])
        nlp, losses, docs = train_tiny_pipeline(config_path, encoder, updates, mixed_precision=True)
    shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
    device = next(torch_model(shim).parameters()).device
    if device.type != "cuda":
        raise RuntimeError(f"the transformer ran on {device}")
    if not (shim_mixed_precision(shim) and shim_grad_scaling(shim)):
        raise RuntimeError("mixed precision or grad scaling is off")
    if not all(math.isfinite(loss) for loss in losses):
        raise RuntimeError(f"non-finite ner losses {losses}")
    if not loss_fell(losses):
        raise RuntimeError(
            f"the ner loss did not fall in {updates} updates at a constant rate (mean of the last "
            f"{LOSS_ENDS} against the first {LOSS_ENDS}): {losses}"
        )
    found = sum(len(doc.ents) for doc in docs)
    return (
        f"tiny BERT on {device}, mixed precision with grad scaling: {updates} updates "
        f"(ner loss {losses[0]:.3g} -> {losses[-1]:.3g}), {len(docs)} texts predicted ({found} entities)"
    )


def gpu_checks(config_path: Path, gpu_id: int) -> Sequence[Check]:
    return [
        ("torch sees the GPU", partial(check_torch, gpu_id)),
        ("cupy compiles and runs a kernel", partial(check_cupy_kernel, gpu_id)),
        ("cuBLAS matrix product (thinc CupyOps)", partial(check_cublas_gemm, gpu_id)),
        ("transformer+ner training step and prediction", partial(check_pipeline, config_path, gpu_id)),
    ]

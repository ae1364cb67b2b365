"""Refuse a checkpoint that asks transformers to run code, before anything of
it loads.

The train step loads whatever checkpoint name or folder it is given. A
checkpoint is data, but its configuration files can ask transformers to
import code: `auto_map` names classes in Python files that travel with the
checkpoint (transformers runs them only with `trust_remote_code`, which this
project never sets), and an attention implementation that is not built in is
fetched as a kernel from another hub repository. The latter is the path of
CVE-2026-4372 (transformers 4.56.0 to 5.2.x with the `kernels` package: a
`_attn_implementation_internal` field that bypasses `trust_remote_code`).
spacy-transformers 1.4 pins transformers below 4.53.3, before that path
existed, but a pin is no guard once it is lifted, so the fields are refused
whatever the installed version (docs/security.md).

transformers itself already prefers `model.safetensors` where a checkpoint
has one, and loads `pytorch_model.bin` with `torch.load(weights_only=True)`;
nothing is added for that here.
"""

import json
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

# The files of a checkpoint that can ask for code: the model's configuration
# (required) and the tokenizer's (optional)
CONFIG_FILES = ("config.json", "tokenizer_config.json")
# The attention implementations transformers builds in (transformers 4.53: eager and the
# keys of its AttentionInterface). Written out rather than read from
# transformers' registry, because code can add to that registry at run time,
# which is how hub kernels enter it.
BUILT_IN_ATTENTION = frozenset(
    {
        "eager",
        "sdpa",
        "flash_attention_2",
        "flash_attention_3",
        "flex_attention",
        "paged_attention",
        "sdpa_paged",
        "eager_paged",
    }
)
ATTENTION_FIELDS = ("attn_implementation", "_attn_implementation")
# Never written by transformers' own save_pretrained: only a crafted file has it
INTERNAL_ATTENTION_FIELD = "_attn_implementation_internal"
HOW_TO_PROCEED = (
    "This project never runs code that comes with a checkpoint (docs/security.md). Use a checkpoint "
    "that transformers builds in, or, if you have read the file and trust its origin, remove the field "
    "from a local copy and train from that folder."
)


class UnsafeCheckpoint(ValueError):
    """A checkpoint, or a config, that asks for code to be run."""


def fields(value: Any, path: str = "") -> Iterator[Tuple[str, Any]]:
    """Every (dotted path, value) of a JSON or config tree, nested configs
    (text_config, encoder...) included."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, item
            yield from fields(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from fields(item, f"{path}[{index}]")


def code_requests(config: Dict[str, Any]) -> Iterator[str]:
    """Why a checkpoint's configuration file asks for code, one reason per field."""
    for path, value in fields(config):
        key = path.rsplit(".", 1)[-1]
        if key == "auto_map":
            yield f"{path} names classes in Python files of the checkpoint, which transformers would import"
        elif key == INTERNAL_ATTENTION_FIELD:
            yield (
                f"{path} = {value!r} is a field transformers never saves: it can make transformers 4.56 to 5.2 "
                "download and run a kernel from another hub repository (CVE-2026-4372)"
            )
        elif key in ATTENTION_FIELDS and value is not None and value not in BUILT_IN_ATTENTION:
            yield (
                f"{path} = {value!r} is not an attention implementation transformers builds in "
                f"({', '.join(sorted(BUILT_IN_ATTENTION))}): it would be fetched and run as code"
            )


def read_checkpoint_file(name: str, filename: str, revision: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """A configuration file of a local folder, or of a hub model (only that
    file is fetched, or read from the hub cache); None if the checkpoint has
    no such file."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        path: Optional[Path] = folder / filename
        if not path.is_file():
            path = None
    else:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        try:
            path = Path(hf_hub_download(name, filename, revision=revision))
        except EntryNotFoundError as err:
            if isinstance(err, LocalEntryNotFoundError):  # offline, and not in the cache
                raise UnsafeCheckpoint(f"cannot read {filename} of {name!r} to check it before loading: {err}") from err
            path = None
        except Exception as err:  # no network, no such repository, gated...
            raise UnsafeCheckpoint(f"cannot read {filename} of {name!r} to check it before loading: {err}") from err
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf8"))
    except ValueError as err:
        raise UnsafeCheckpoint(f"{path} is not valid JSON: {err}") from err


def check_checkpoint(name: str, revision: Optional[str] = None) -> None:
    """Refuse the checkpoint `name` (a hub id or a local folder) if its
    configuration files ask for code; its weights are never touched."""
    config = read_checkpoint_file(name, "config.json", revision)
    if config is None:
        raise UnsafeCheckpoint(f"{name!r} has no config.json: it is not a transformers checkpoint")
    reasons = [
        f"{filename}: {reason}"
        for filename, content in (
            ("config.json", config),
            ("tokenizer_config.json", read_checkpoint_file(name, "tokenizer_config.json", revision)),
        )
        if content is not None
        for reason in code_requests(content)
    ]
    if reasons:
        raise UnsafeCheckpoint(f"Refusing to load checkpoint {name!r}: " + "; ".join(reasons) + ". " + HOW_TO_PROCEED)


def check_no_trusted_remote_code(config: Dict[str, Any], source: str) -> None:
    """Refuse a spaCy config that sets trust_remote_code anywhere (a
    tokenizer_config or transformer_config passes it on to transformers)."""
    trusted = [path for path, value in fields(config) if path.rsplit(".", 1)[-1] == "trust_remote_code" and value]
    if trusted:
        raise UnsafeCheckpoint(
            f"{source}: {', '.join(trusted)} = true would let transformers run code that comes "
            "with the checkpoint. Remove it: this project never runs such code (docs/security.md)."
        )

"""The settings of a server, which every worker process and Ray replica
shares; they travel to uvicorn's worker processes as JSON in an environment
variable, as uvicorn starts them from an import string."""

import json
import os
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, Optional

from ..inference.annotator import ModelIdentity
from ..inference.settings import ENGINES, Settings

SETTINGS_ENV = "CONLL_NER_SERVE_SETTINGS"


class ServeError(ValueError):
    """A setting or pipeline that a server cannot start with."""


@dataclass(frozen=True)
class ServeSettings:
    """What a server loads, where it listens, its request limits and how it
    gathers concurrent requests into batches."""

    model: str
    host: str = "127.0.0.1"
    port: int = 8000
    engine: str = "local"
    # local: uvicorn worker processes; ray: Ray Serve replicas. Each loads
    # the pipeline and batches its own requests
    workers: int = 1
    # GPUs per worker (ray: num_gpus); local: > 0 runs on GPU 0
    gpus: float = 0
    ray_address: str = ""
    # limits, each answered with 413 and its name: the request body in bytes,
    # texts per request and characters per text. A text of 1,000,000
    # characters of any script fits (up to 6 bytes each as JSON escapes)
    max_request_bytes: int = 8 * 2**20
    max_texts: int = 256
    max_text_chars: int = 1_000_000
    # longer texts are annotated in pieces, as annotate cuts them
    max_chars: int = 10_000
    # texts per nlp.pipe batch
    batch_size: int = 64
    # micro-batching: concurrent requests are gathered into one nlp.pipe
    # call for at most max_wait_ms after the first arrives, up to
    # max_batch_texts texts (a larger request is taken alone); 1 turns
    # batching across requests off
    max_batch_texts: int = 128
    max_wait_ms: float = 5.0
    # CPU threads of each worker's torch and BLAS; 0: the libraries' default
    threads: int = 0
    # a Python file to import before loading (custom components, as spaCy's --code)
    code: Optional[str] = None
    # the pipeline as the server started with it; each worker refuses another
    identity: Optional[ModelIdentity] = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ServeError(f"unknown engine {self.engine!r}: use {' or '.join(ENGINES)}")
        if self.workers < 1 or self.gpus < 0:
            raise ServeError(f"workers must be at least 1 and gpus at least 0, not {self.workers} and {self.gpus}")
        for name in ("max_request_bytes", "max_texts", "max_batch_texts", "batch_size"):
            if getattr(self, name) < 1:
                raise ServeError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ServeError(f"max_wait_ms must be at least 0, not {self.max_wait_ms}")
        # the annotate settings check max_chars and max_text_chars
        self.annotate_settings()

    def annotate_settings(self) -> Settings:
        """How the annotate code cuts and batches the texts."""
        return Settings(batch_size=self.batch_size, max_chars=self.max_chars, max_text_chars=self.max_text_chars)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeSettings":
        fields: Dict[str, Any] = json.loads(text)
        identity = fields.pop("identity")
        return cls(**fields, identity=ModelIdentity(**identity) if identity else None)

    @classmethod
    def from_environment(cls) -> "ServeSettings":
        if SETTINGS_ENV not in os.environ:
            raise ServeError(f"{SETTINGS_ENV} is not set: start the server with scripts/serve.py")
        return cls.from_json(os.environ[SETTINGS_ENV])

    def with_identity(self, identity: ModelIdentity) -> "ServeSettings":
        return replace(self, identity=identity)

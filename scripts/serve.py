"""Serve a trained or packaged pipeline over HTTP: POST /ents (JSON), a
displaCy page at /, /health, /metrics and /openapi.json, on uvicorn (local)
or Ray Serve (ray). See docs/serving.md."""

from typing import Optional

import typer
from wasabi import msg

from conll_ner.inference.settings import AnnotateError
from conll_ner.serving.server import serve
from conll_ner.serving.settings import ServeError, ServeSettings

DEFAULTS = ServeSettings(model="")


def main(
    model: str = typer.Argument(..., help="Pipeline folder or installed package name"),
    host: str = typer.Option(DEFAULTS.host, "--host", help="Address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(DEFAULTS.port, "--port", help="Port to listen on"),
    engine: str = typer.Option(DEFAULTS.engine, "--engine", help="local (uvicorn) or ray (Ray Serve)"),
    workers: int = typer.Option(DEFAULTS.workers, "--workers", help="local: uvicorn processes; ray: replicas"),
    gpus: float = typer.Option(
        DEFAULTS.gpus, "--gpus", help="GPUs per worker (ray: num_gpus); local: >0 runs on GPU 0"
    ),
    ray_address: str = typer.Option(
        "",
        "--ray-address",
        help="ray: 'auto' joins this machine's cluster, an address joins that one, empty starts one",
    ),
    max_request_bytes: int = typer.Option(DEFAULTS.max_request_bytes, "--max-request-bytes", help="Largest body"),
    max_texts: int = typer.Option(DEFAULTS.max_texts, "--max-texts", help="Most texts per request"),
    max_text_chars: int = typer.Option(DEFAULTS.max_text_chars, "--max-text-chars", help="Longest text, characters"),
    max_chars: int = typer.Option(DEFAULTS.max_chars, "--max-chars", help="Longer texts are annotated in pieces"),
    batch_size: int = typer.Option(DEFAULTS.batch_size, "--batch-size", help="Texts per nlp.pipe batch"),
    max_batch_texts: int = typer.Option(
        DEFAULTS.max_batch_texts, "--max-batch-texts", help="Most texts gathered from concurrent requests (1: none)"
    ),
    max_wait_ms: float = typer.Option(
        DEFAULTS.max_wait_ms, "--max-wait-ms", help="How long a batch waits for more requests after its first"
    ),
    threads: int = typer.Option(0, "--threads", help="CPU threads per worker; 0: the cores shared among the workers"),
    code: Optional[str] = typer.Option(None, "--code", help="Python file to import first (custom components)"),
) -> None:
    try:
        settings = ServeSettings(
            model, host, port, engine, workers, gpus, ray_address, max_request_bytes, max_texts, max_text_chars,
            max_chars, batch_size, max_batch_texts, max_wait_ms, threads, code,
        )  # fmt: skip
        msg.info(f"Serving {model} on http://{host}:{port}/ ({engine} engine, {workers} worker(s))")
        serve(settings)
    except (AnnotateError, ServeError) as err:
        msg.fail(str(err), exits=1)


if __name__ == "__main__":
    typer.run(main)

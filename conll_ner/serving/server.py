"""Starting a server: the pipeline is found and fingerprinted once, here,
before any worker starts, then uvicorn runs the application in `workers`
processes (local engine) or Ray Serve in `workers` replicas (ray engine)."""

import os
from dataclasses import replace

from ..inference.annotator import model_identity
from .settings import SETTINGS_ENV, ServeError, ServeSettings

INSTALL_HINT = "pip install -r requirements-serve.txt"


def serve(settings: ServeSettings) -> None:
    """Serve until stopped (SIGTERM or Ctrl-C: requests in flight finish)."""
    settings = settings.with_identity(model_identity(settings.model))
    if settings.workers > 1 and not settings.threads and not settings.ray_address:
        # this machine's cores, shared among the workers (on a cluster: --threads)
        settings = replace(settings, threads=max(1, (os.cpu_count() or 1) // settings.workers))
    if settings.engine == "ray":
        from .ray_serve import serve_on_ray

        serve_on_ray(settings)
        return
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as err:
        raise ServeError(f"serving needs FastAPI and uvicorn, which are not installed ({err}): {INSTALL_HINT}") from err
    # uvicorn's worker processes start the application from an import string
    os.environ[SETTINGS_ENV] = settings.to_json()
    uvicorn.run(
        "conll_ner.serving.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
    )

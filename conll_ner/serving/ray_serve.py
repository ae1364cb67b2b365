"""The same application as a Ray Serve deployment of `workers` replicas, on
a local Ray instance or a cluster: each replica builds the FastAPI app (its
own pipeline, batcher and metrics), and Ray Serve's proxy spreads the
requests over them. Every node needs this project's requirements with
requirements-serve.txt, and the pipeline (an installed package, or a folder
at the same path); a replica that loads another name or version than the
server started with refuses to start."""

import signal
import sys
import time

from fastapi import FastAPI

from .app import create_app
from .settings import ServeError, ServeSettings

APP_NAME, DEPLOYMENT_NAME = "conll_ner", "conll_ner_entities"
INSTALL_HINT = "pip install -r requirements-serve.txt (or pip install 'ray[serve]>=2.40')"


def import_serve():
    try:
        import ray
        from ray import serve
    except ImportError as err:
        raise ServeError(f"the ray engine needs Ray Serve, which is not installed ({err}): {INSTALL_HINT}") from err
    return ray, serve


def ray_application(settings: ServeSettings):
    """The bound deployment. A replica takes up to two batches' worth of
    requests at once (Ray Serve's default, 5, would keep its batches small)."""
    _, serve = import_serve()

    def build_app() -> FastAPI:
        # a plain function: Ray Serve takes a partial for an ASGI app, not for its builder
        return create_app(settings)

    @serve.deployment(
        name=DEPLOYMENT_NAME,
        num_replicas=settings.workers,
        max_ongoing_requests=2 * settings.max_batch_texts,
        ray_actor_options={"num_cpus": settings.threads or 1, "num_gpus": settings.gpus},
    )
    @serve.ingress(build_app)
    class EntitiesServer:
        """A replica: the FastAPI application, built on the replica."""

    return EntitiesServer.bind()


def serve_on_ray(settings: ServeSettings) -> None:
    """Run the deployment until SIGTERM or Ctrl-C, on the cluster at
    `ray_address` ("auto": the one this machine belongs to) or a local Ray
    instance; Ray Serve's proxy listens on host and port."""
    ray, serve = import_serve()
    # a local instance without the dashboard, which Serve does not need
    ray.init(**({"address": settings.ray_address} if settings.ray_address else {"include_dashboard": False}))
    # SIGTERM as Ctrl-C: Serve drains the replicas' requests and the local instance stops
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve.start(http_options={"host": settings.host, "port": settings.port})
        serve.run(ray_application(settings), name=APP_NAME, route_prefix="/")
        replicas = serve.status().applications[APP_NAME].deployments[DEPLOYMENT_NAME].replica_states
        print(f"Ray Serve: {replicas.get('RUNNING', 0)} replicas of {DEPLOYMENT_NAME} running", flush=True)
        while True:
            time.sleep(3600)
    finally:
        serve.shutdown()
        ray.shutdown()

"""The pipeline of one worker, loaded with the annotate step's code and
described as every answer describes it: name, version, and where and in
what precision it predicts."""

import os
from dataclasses import dataclass
from typing import Dict, List

import spacy
from spacy.language import Language

from ..inference.annotator import Row, annotate_records, load_pipeline, model_identity
from ..inference.corpus import Record
from ..pipeline.prediction_runtime import prediction_runtime
from .settings import ServeSettings


@dataclass
class ServedPipeline:
    nlp: Language
    settings: ServeSettings
    info: Dict[str, str]

    @property
    def labels(self) -> List[str]:
        return list(self.nlp.pipe_labels.get("ner", []))

    def annotate(self, texts: List[str]) -> List[Row]:
        """One row per text, as annotate makes them (long texts in pieces,
        a text that breaks the pipeline an error row of its own)."""
        records = [Record(0, index, index, text) for index, text in enumerate(texts)]
        return annotate_records(self.nlp, records, self.settings.annotate_settings())


def limit_threads(threads: int) -> None:
    """Workers that share the cores each use their share, as annotate's do."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    try:
        import torch
    except ImportError:  # a CNN pipeline's environment
        return
    torch.set_num_threads(threads)


def load_served_pipeline(settings: ServeSettings) -> ServedPipeline:
    """Load the pipeline of `settings` in this worker; refuse another name or
    version than the server started with (another install on a Ray node)."""
    if settings.code:
        spacy.util.import_file(os.path.splitext(os.path.basename(settings.code))[0], settings.code)
    if settings.threads:
        limit_threads(settings.threads)
    identity = settings.identity or model_identity(settings.model)
    nlp = load_pipeline(settings.model, identity, settings.annotate_settings(), gpu=settings.gpus > 0)
    runtime = prediction_runtime(nlp)
    info = {"name": identity.name, "version": identity.version, **runtime}
    return ServedPipeline(nlp, settings, info)

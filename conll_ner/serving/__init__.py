"""Serving a trained or packaged pipeline over HTTP: an entities API, a
displaCy page, micro-batching of concurrent requests, request limits, on
uvicorn (`local`) or as a Ray Serve deployment (`ray`). The pipeline itself
is loaded and run with the annotate step's code (conll_ner/inference/), so a
text gets the same entities from both."""

"""Predicting with trained pipelines: annotating large corpora (`annotate`,
on one machine or a Ray cluster). How the transformer computes on a CPU is
the pipeline's own business: conll_ner/pipeline/."""

"""Predicting with trained pipelines: faster predictions on CPUs (`cpu_ops`,
which travels inside packaged pipelines) and annotating large corpora
(`annotate`, on one machine or a Ray cluster)."""

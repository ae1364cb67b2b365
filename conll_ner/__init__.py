"""Reusable code of the CoNLL NER spaCy project: data conversion, scoring and
the functions that the configs reference through spaCy's registries."""

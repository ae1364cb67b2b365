"""Components for the serving tests' pipelines, which the server imports
with --code: one that raises on a text, one that takes its time on another
(a request in flight while the server is told to stop)."""

import time

from spacy.language import Language


@Language.component("serving_test_faults")
def serving_test_faults(doc):
    if "boom" in doc.text:
        raise ValueError("boom")
    if "sleepy" in doc.text:
        time.sleep(3)
    return doc

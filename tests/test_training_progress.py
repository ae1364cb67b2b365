import io

import spacy

from conll_ner.training.progress import create_remaining_time_logger, format_duration, remaining_seconds


def test_remaining_time_follows_the_pace_so_far():
    assert remaining_seconds(step=100, seconds=50, max_steps=1000) == 450
    assert remaining_seconds(step=0, seconds=5, max_steps=1000) is None  # spaCy's evaluation before any update
    assert remaining_seconds(step=100, seconds=50, max_steps=0) is None  # no step limit
    assert format_duration(45) == "45 s" and format_duration(600) == "10 min" and format_duration(4000) == "1 h 07 min"


def test_estimate_is_printed_after_evaluations_only():
    seen = []
    inner = lambda nlp, out, err: (seen.append, lambda: None)  # noqa: E731
    nlp = spacy.blank("en")
    nlp.config["training"]["max_steps"] = 400
    stdout = io.StringIO()
    log_step, _ = create_remaining_time_logger(inner)(nlp, stdout, io.StringIO())
    log_step({"step": 0, "seconds": 3, "score": 0.0})
    log_step({"step": 50, "seconds": 60, "score": None})  # not an evaluation
    log_step({"step": 100, "seconds": 120, "score": 0.5})
    assert len(seen) == 3  # the wrapped logger sees every step
    assert stdout.getvalue() == "Step 100 of 400 after 2 min: about 6 min left\n"

import io
import math
from itertools import islice

import pytest
import spacy

from conll_ner.training.guard import EarlyStop, TrainingHealthError, create_training_health_guard
from conll_ner.training.schedules import create_warmup_linear_fraction


def recording_logger(lines):
    def setup(nlp, stdout, stderr):
        return (lambda info: lines.append(info)), (lambda: lines.append("finalized"))

    return setup


def info(step, f, loss=1.0):
    return {"step": step, "epoch": 0, "losses": {"ner": loss}, "other_scores": {"ents_f": f}, "score": f}


def start_guard(max_zero_evals=3, patience=0):
    lines = []
    guard = create_training_health_guard(recording_logger(lines), max_zero_evals=max_zero_evals, patience=patience)
    log_step, _ = guard(spacy.blank("en"), io.StringIO(), io.StringIO())
    return log_step, lines


def test_guard_stops_when_dev_f_stays_zero():
    log_step, lines = start_guard(max_zero_evals=3)
    log_step(info(0, 0.0))  # the evaluation before training does not count
    log_step(None)  # steps without evaluation pass through
    log_step(info(100, 0.0))
    log_step(info(200, 0.0))
    with pytest.raises(TrainingHealthError, match=r"step 300: dev ents_f has been 0 for 3 evaluations.*learning rate"):
        log_step(info(300, 0.0))
    assert lines[-1] == "finalized" and len([line for line in lines if isinstance(line, dict)]) == 4


def test_guard_resets_on_progress():
    log_step, _ = start_guard(max_zero_evals=2)
    for step, f in [(100, 0.0), (200, 0.1), (300, 0.0), (400, 0.2)]:
        log_step(info(step, f))


def test_patience_never_counts_from_the_step_0_evaluation():
    # step 0's score is the best of the run's first half: spaCy's patience
    # (counted from the earliest best, step 0) would have stopped at step 200
    log_step, _ = start_guard(max_zero_evals=10, patience=200)
    for step, f in [(0, 0.05), (100, 0.0), (200, 0.01), (300, 0.02)]:
        log_step(info(step, f))


def test_patience_stops_the_run_after_the_best_evaluation():
    log_step, lines = start_guard(max_zero_evals=10, patience=200)
    for step, f in [(0, 0.0), (100, 0.3), (200, 0.5), (300, 0.4)]:
        log_step(info(step, f))
    with pytest.raises(EarlyStop, match=r"step 400: no better dev score than step 200's \(0.5000\) in 200 updates"):
        log_step(info(400, 0.5))  # equal is not better
    assert lines[-1] == "finalized"


def test_patience_zero_never_stops():
    log_step, _ = start_guard(max_zero_evals=10, patience=0)
    for step in range(0, 1000, 100):
        log_step(info(step, 0.5 if step == 100 else 0.1))


@pytest.mark.parametrize("loss", [math.nan, math.inf])
def test_guard_stops_on_nan_or_infinite_loss(loss):
    log_step, _ = start_guard()
    with pytest.raises(TrainingHealthError, match=r"step 50: the ner loss is (nan|inf).*schedule"):
        log_step(info(50, 0.5, loss=loss))


def test_warmup_is_a_share_of_the_run():
    rates = list(islice(create_warmup_linear_fraction(1e-4, total_steps=100, warmup_fraction=0.1), 101))
    assert rates[0] == 0.0 and max(rates) == pytest.approx(1e-4)
    assert rates.index(max(rates)) == 10 and rates[100] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="max_steps"):
        create_warmup_linear_fraction(1e-4, total_steps=0)

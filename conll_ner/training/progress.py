"""How long a run has left, said after each evaluation.

spaCy's console logger shows steps and scores but not when a run of
thousands of updates will end; on a CPU that can be minutes or hours. This
logger wraps another and, after every evaluation past the first update,
prints the remaining time estimated from the pace so far.
"""

from typing import IO, Any, Callable, Dict, Optional

from spacy.language import Language
from spacy.util import registry


def remaining_seconds(step: int, seconds: float, max_steps: int) -> Optional[float]:
    """Time left at the pace of the run so far (evaluations included), or
    None when it cannot be told: no update yet, or no step limit."""
    if step <= 0 or not max_steps or seconds <= 0:
        return None
    return seconds / step * max(max_steps - step, 0)


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


@registry.loggers("conll_ner.RemainingTimeLogger.v1")
def create_remaining_time_logger(logger: Callable) -> Callable:
    def setup(nlp: Language, stdout: IO, stderr: IO):
        log_step, finalize = logger(nlp, stdout, stderr)
        max_steps = nlp.config["training"]["max_steps"]

        def log_remaining(info: Optional[Dict[str, Any]]) -> None:
            log_step(info)
            if info is None or info.get("score") is None:
                return
            left = remaining_seconds(info["step"], info.get("seconds", 0), max_steps)
            if left is not None:
                stdout.write(
                    f"Step {info['step']:,} of {max_steps:,} after {format_duration(info['seconds'])}: "
                    f"about {format_duration(left)} left\n"
                )
                stdout.flush()

        return log_remaining, finalize

    return setup

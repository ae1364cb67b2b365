"""Every evaluation of a training run as one JSON line, for the model card and
the benchmark.

spaCy's console logger can write JSONL too, but it leaves out the words seen
and the seconds elapsed (needed for training throughput), and it refuses to
write when the file exists, so a re-run would silently have no log. This
logger wraps another (the console logger) and overwrites its file. With no
path (`paths.train_log = null`, as in plain `spacy train` runs) it writes no
file and only passes the evaluations on.
"""

import json
from pathlib import Path
from typing import IO, Any, Callable, Dict, Optional, Union

from spacy.language import Language
from spacy.util import registry


@registry.loggers("conll_ner.JSONLTrainingLog.v1")
def create_jsonl_training_log(logger: Callable, path: Optional[Union[str, Path]] = None) -> Callable:
    def setup(nlp: Language, stdout: IO, stderr: IO):
        log_step, finalize = logger(nlp, stdout, stderr)
        score_keys = [key for key, weight in nlp.config["training"]["score_weights"].items() if weight is not None]
        if path is None:
            return log_step, finalize
        log_path = Path(path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("w", encoding="utf8")

        def log_evaluation(info: Optional[Dict[str, Any]]) -> None:
            log_step(info)
            if info is None:
                return
            scores = {key: float(info["other_scores"].get(key) or 0.0) * 100 for key in score_keys}
            record = {
                "epoch": info["epoch"],
                "step": info["step"],
                "words": info.get("words", 0),
                "seconds": info.get("seconds", 0),
                "losses": {name: float(loss) for name, loss in info["losses"].items()},
                "scores": scores,  # percentages, as the console shows them
                "score": float(info["score"]),
            }
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

        def close() -> None:
            finalize()
            log_file.close()

        return log_evaluation, close

    return setup

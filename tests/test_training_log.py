import io
import json

import spacy

from conll_ner.training.log import create_jsonl_training_log


def evaluation(step, f):
    return {
        "epoch": 1,
        "step": step,
        "words": 100 * step,
        "seconds": step,
        "losses": {"ner": 2.5},
        "other_scores": {"ents_f": f, "ents_p": f, "ents_r": None},
        "score": f,
    }


def run_log(path, infos):
    seen = []
    inner = lambda nlp, out, err: (seen.append, lambda: seen.append("finalized"))  # noqa: E731
    nlp = spacy.blank("en")
    nlp.config["training"]["score_weights"] = {"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None}
    log_step, finalize = create_jsonl_training_log(inner, path)(nlp, io.StringIO(), io.StringIO())
    for info in infos:
        log_step(info)
    finalize()
    return seen


def test_each_evaluation_is_a_json_line_and_reruns_overwrite(tmp_path):
    path = tmp_path / "run" / "train_log.jsonl"
    seen = run_log(path, [evaluation(0, 0.0), None, evaluation(10, 0.5)])
    assert seen[-1] == "finalized" and seen[1] is None  # the wrapped logger sees everything
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 10]
    assert records[1]["words"] == 1000 and records[1]["losses"] == {"ner": 2.5}
    assert records[1]["scores"] == {"ents_f": 50.0, "ents_p": 50.0, "ents_r": 0.0}
    run_log(path, [evaluation(5, 0.25)])
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [5]

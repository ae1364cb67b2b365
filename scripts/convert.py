"""Convert CoNLL-2002/2003 NER files to spaCy DocBins plus statistics JSONs:
every split in a folder (the convert step), or one file."""

import time
from pathlib import Path
from typing import List, Optional, Tuple

import typer
from wasabi import msg

from conll_ner.data.conll import ConllFormatError
from conll_ner.data.docbin import convert_file
from conll_ner.data.sources import SPLIT_FILES, docbin_of_split


def main(
    input_path: Path = typer.Argument(
        ...,
        help="A CoNLL file as distributed (eng.train, esp.testa, ...), or a folder holding every split under its original name (conll2003/eng.train, ...)",
    ),
    output_path: Path = typer.Argument(
        ...,
        help="For a file: the .spacy file (statistics go to OUTPUT.stats.json); for a folder: the corpus folder (<split>/<lang>.spacy)",
    ),
    lang: Optional[str] = typer.Option(
        None, "--lang", "-l", help="For a file: spaCy language code: en, es, nl (xx: multilingual)"
    ),
    n_sents: int = typer.Option(
        10, "--n-sents", "-n", help="Sentences per Doc, never crossing a -DOCSTART-; 0 = whole documents"
    ),
) -> None:
    if input_path.is_dir() == bool(lang):
        msg.fail("Give a CoNLL file with --lang, or a folder of every split without it", exits=1)
    jobs: List[Tuple[Path, Path, str]] = [(input_path, output_path, lang or "")]
    if input_path.is_dir():
        jobs = []
        for relative in SPLIT_FILES:
            split_lang, docbin = docbin_of_split(relative)
            jobs.append((input_path / relative, output_path / docbin, split_lang))
        missing = [str(source) for source, _, _ in jobs if not source.is_file()]
        if missing:
            msg.fail(f"{input_path} lacks {len(missing)} split(s): {', '.join(missing)}", exits=1)
    for source, output, source_lang in jobs:
        start = time.perf_counter()
        try:
            stats, stats_path = convert_file(source, output, source_lang, n_sents)
        except ConllFormatError as err:
            typer.echo(f"✘ {err}", err=True)
            raise typer.Exit(1) from err
        for warning in stats.warnings:
            msg.warn(warning)
        entities = ", ".join(f"{label} {count}" for label, count in stats.entities.items())
        msg.good(
            f"{source} ({stats.encoding}, {stats.columns} columns, {stats.scheme}) -> {output}: "
            f"{stats.documents} documents, {stats.sentences} sentences, {stats.tokens} tokens, "
            f"{stats.docs_written} Docs; entities {entities}; repaired tags {stats.repaired_tags} "
            f"[{time.perf_counter() - start:.1f}s]"
        )
        msg.text(f"Statistics: {stats_path}")


if __name__ == "__main__":
    typer.run(main)

"""Convert a CoNLL-2002/2003 NER file to a spaCy DocBin plus a statistics JSON."""

import time
from pathlib import Path

import typer
from spacy.util import get_lang_class
from spacy.vocab import create_vocab
from wasabi import msg

from conll_ner.data.conll import ConllFormatError, read_conll_file
from conll_ner.data.docbin import conll_to_docbin, save_conversion


def main(
    input_path: Path = typer.Argument(..., help="CoNLL file as distributed (eng.train, esp.testa, ...)"),
    output_path: Path = typer.Argument(..., help="Output .spacy file; statistics go to OUTPUT.stats.json"),
    lang: str = typer.Option(..., "--lang", "-l", help="spaCy language code: en, es, nl (xx: multilingual)"),
    n_sents: int = typer.Option(
        10, "--n-sents", "-n", help="Sentences per Doc, never crossing a -DOCSTART-; 0 = whole documents"
    ),
) -> None:
    start = time.perf_counter()
    try:
        conll = read_conll_file(input_path)
    except ConllFormatError as err:
        typer.echo(f"✘ {err}", err=True)
        raise typer.Exit(1) from err
    # The vocabulary spacy.blank(lang) would build (spaCy's Language builds it with create_vocab), without
    # spacy.blank loading every installed pipeline factory: spacy-transformers and torch, ~5 s per file
    doc_bin, stats = conll_to_docbin(
        conll.sentences,
        create_vocab(lang, get_lang_class(lang).Defaults),
        n_sents=n_sents,
        source=str(input_path),
        encoding=conll.encoding,
        columns=conll.columns,
        documents=conll.documents,
    )
    stats_path = save_conversion(doc_bin, stats, output_path)
    for warning in stats.warnings:
        msg.warn(warning)
    entities = ", ".join(f"{label} {count}" for label, count in stats.entities.items())
    msg.good(
        f"{input_path} ({stats.encoding}, {stats.columns} columns, {stats.scheme}) -> {output_path}: "
        f"{stats.documents} documents, {stats.sentences} sentences, {stats.tokens} tokens, "
        f"{stats.docs_written} Docs; entities {entities}; repaired tags {stats.repaired_tags} "
        f"[{time.perf_counter() - start:.1f}s]"
    )
    msg.text(f"Statistics: {stats_path}")


if __name__ == "__main__":
    typer.run(main)

"""The data step: every CoNLL split into one folder for the convert step, the
original file from DATA_DIR when it is there, else a copy from the Hugging Face
hub, saying which for each split."""

from pathlib import Path

import typer
from wasabi import msg

from conll_ner.data.sources import MissingDataError, gather_splits


def main(
    data_dir: Path = typer.Argument(..., help="Folder with the original files (conll2003/eng.train, ...), if any"),
    output_dir: Path = typer.Argument(..., help="Folder to write every split into, under its original name"),
    conll2003: str = typer.Option("eriktks/conll2003", help="Hub dataset id for CoNLL-2003"),
    conll2002: str = typer.Option("eriktks/conll2002", help="Hub dataset id for CoNLL-2002 (configs es, nl)"),
    revision: str = typer.Option("", help="Hub revision, e.g. refs/convert/parquet for a script dataset"),
) -> None:
    dataset_ids = {"conll2003": conll2003, "conll2002": conll2002}
    try:
        for source in gather_splits(data_dir, output_dir, dataset_ids, revision):
            msg.good(source)
    except MissingDataError as err:
        typer.echo(f"✘ {err}", err=True)
        raise typer.Exit(1) from err


if __name__ == "__main__":
    typer.run(main)

"""Write the CoNLL splits from the Hugging Face hub as CoNLL files, for users
who do not have the original files: `--vars.data_dir assets/hub` then reads them."""
from pathlib import Path

import typer
from wasabi import msg

from conll_ner.hub import HUB_SPLITS, hub_split_to_conll

# Original file prefix -> (project var holding the dataset id, hub config name)
HUB_SOURCES = {
    "conll2003/eng": ("conll2003", None),
    "conll2002/esp": ("conll2002", "es"),
    "conll2002/ned": ("conll2002", "nl"),
}


def main(
    output_dir: Path = typer.Argument(..., help="Folder to write conll2003/eng.train ... into"),
    conll2003: str = typer.Option("eriktks/conll2003", help="Hub dataset id for CoNLL-2003"),
    conll2002: str = typer.Option("eriktks/conll2002", help="Hub dataset id for CoNLL-2002 (configs es, nl)"),
    revision: str = typer.Option("", help="Hub revision, e.g. refs/convert/parquet for a script dataset"),
) -> None:
    dataset_ids = {"conll2003": conll2003, "conll2002": conll2002}
    for prefix, (corpus, config_name) in HUB_SOURCES.items():
        for suffix, hub_split in HUB_SPLITS.items():
            output = output_dir / f"{prefix}.{suffix}"
            n = hub_split_to_conll(dataset_ids[corpus], config_name, hub_split, revision, output)
            msg.good(f"{dataset_ids[corpus]} {config_name or ''} {hub_split}: {n} sentences -> {output}")


if __name__ == "__main__":
    typer.run(main)

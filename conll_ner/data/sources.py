"""The CoNLL files the convert step reads: the original file of each split when
the user has it, else a copy from the Hugging Face hub.

CoNLL-2003 may not be redistributed, so a fresh clone cannot download it from
its source; the hub's copies let `spacy project run all` work on any machine
that is online. The original files stay the first choice, as published scores
are computed on them. Every split is written to one folder whichever source it
came from, so the convert step reads, and depends on, one fixed path per split.
"""

from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from ..files import write_atomically
from .hub import HUB_SOURCES, HUB_SPLIT_OF_FILE, hub_split_to_conll

# Every split the convert step needs, under its original name.
SPLIT_FILES = [f"{prefix}.{suffix}" for prefix in HUB_SOURCES for suffix in HUB_SPLIT_OF_FILE]
# Where the convert step writes each split in the corpus folder: <split>/<lang>.spacy
LANG_OF_FILE_PREFIX = {"conll2003/eng": "en", "conll2002/esp": "es", "conll2002/ned": "nl"}
CORPUS_SPLIT_OF_SUFFIX = {"train": "train", "testa": "dev", "testb": "test"}


def docbin_of_split(relative: str) -> Tuple[str, str]:
    """(language, path in the corpus folder) of a split's DocBin, e.g.
    conll2002/esp.testa -> (es, dev/es.spacy)."""
    prefix, suffix = relative.rsplit(".", 1)
    lang = LANG_OF_FILE_PREFIX[prefix]
    return lang, f"{CORPUS_SPLIT_OF_SUFFIX[suffix]}/{lang}.spacy"


class MissingDataError(RuntimeError):
    """Splits that are not in the data folder and that the hub did not give;
    the message lists the ways to provide them."""


def gather_splits(data_dir: Path, output_dir: Path, dataset_ids: Dict[str, str], revision: str) -> Iterator[str]:
    """Write every split to `output_dir` under its original name: the file in
    `data_dir` as it is when present, else the hub copy. Yield, per split,
    where it came from."""
    missing = [relative for relative in SPLIT_FILES if not (data_dir / relative).is_file()]
    for relative in SPLIT_FILES:
        local = data_dir / relative
        output = output_dir / relative
        if relative not in missing:
            write_atomically(output, local.read_bytes())
            yield f"{relative}: local file {local} -> {output}"
            continue
        prefix, suffix = relative.rsplit(".", 1)
        corpus, config_name = HUB_SOURCES[prefix]
        source = (
            f"hub dataset {dataset_ids[corpus]}, config {config_name or '(default)'}, "
            f"split {HUB_SPLIT_OF_FILE[suffix]}, revision {revision or '(default)'}"
        )
        try:
            n = hub_split_to_conll(dataset_ids[corpus], config_name, HUB_SPLIT_OF_FILE[suffix], revision, output)
        except Exception as err:
            # Whatever went wrong (offline, unknown id or config, wrong
            # features), the remedies are the same; the cause is named and kept.
            raise MissingDataError(missing_data_message(data_dir, missing, source, err)) from err
        yield f"{relative}: not in {data_dir}, so {source}: {n} sentences -> {output}"


def missing_data_message(data_dir: Path, missing: List[str], source: str, cause: Exception) -> str:
    paths = "".join(f"\n    {data_dir / relative}" for relative in missing)
    return (
        f"{len(missing)} CoNLL file(s) are not in {data_dir}, and the {source} could not be "
        f"loaded ({type(cause).__name__}: {cause}). Provide the data in one of these ways:\n"
        f"  - put the original files at:{paths}\n"
        f"  - or run with --vars.data_dir DIR, DIR being a folder that holds them under "
        f"these names ({', '.join(missing)})\n"
        f"  - or be online, with --vars.hub_conll2003, --vars.hub_conll2002 and "
        f"--vars.hub_revision naming hub datasets that load with datasets.load_dataset "
        f"(parquet copies; refs/convert/parquet for a script dataset)"
    )

"""What a workflow `lang` means: spaCy language and corpus files.

`convert` writes corpus/<split>/<lang>.spacy for en, es and nl; `multi` trains
one pipeline on all three (spaCy's Corpus reads every .spacy file below a
folder) and is evaluated on each language separately.
"""

from pathlib import Path
from typing import Dict, List, Union

LANGUAGES = ("en", "es", "nl")
MULTI = "multi"
CORPUS_NAMES = {"en": "conll03", "es": "conll02", "nl": "conll02", MULTI: "conll0203"}
# Hugging Face hub dataset of each language, for model cards' model-index
HUB_DATASETS = {"en": "conll2003", "es": "conll2002", "nl": "conll2002"}


def check_lang(lang: str) -> str:
    if lang not in LANGUAGES and lang != MULTI:
        raise ValueError(f"unknown lang {lang!r}: use one of {', '.join(LANGUAGES)} or {MULTI}")
    return lang


def spacy_lang(lang: str) -> str:
    return "xx" if check_lang(lang) == MULTI else lang


def languages(lang: str) -> List[str]:
    return list(LANGUAGES) if check_lang(lang) == MULTI else [lang]


def training_path(corpus_dir: Union[str, Path], lang: str, split: str) -> Path:
    """The file (one language) or folder (multi) that spaCy trains or evaluates on."""
    corpus_dir = Path(corpus_dir)
    return corpus_dir / split if check_lang(lang) == MULTI else corpus_dir / split / f"{lang}.spacy"


def evaluation_paths(corpus_dir: Union[str, Path], lang: str, splits=("dev", "test")) -> Dict[str, Path]:
    """`<split>-<language>` -> file, one per language, so multi is reported per language."""
    return {
        f"{split}-{language}": Path(corpus_dir) / split / f"{language}.spacy"
        for split in splits
        for language in languages(lang)
    }

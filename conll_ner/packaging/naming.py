"""What a package is called and how its meta.json describes it: named after
the corpus and the checkpoint the pipeline was trained from (its config says
which) unless the user names the encoder; a distilled student's name ends in
_distilled."""

from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from spacy.util import load_config

from ..runs import CORPUS_NAMES, languages, spacy_lang
from ..training.encoders import encoder_name, pipeline_transformer


def pipeline_encoder(model_dir: Path, encoder: str = "") -> Tuple[Optional[str], str]:
    """The pipeline's transformer checkpoint (None without one) and the
    short encoder name for its package: `encoder` where given, else derived
    from the checkpoint. Raises ValueError for a name that cannot be one."""
    transformer = pipeline_transformer(load_config(Path(model_dir) / "config.cfg", interpolate=True))
    return transformer, encoder_name(transformer, encoder)


def package_name(lang: str, encoder: str, distilled: bool) -> str:
    """The name `spacy package` takes, without the language prefix it adds."""
    return f"ner_{CORPUS_NAMES[lang]}_{encoder}" + ("_distilled" if distilled else "")


def full_package_name(lang: str, encoder: str, distilled: bool) -> str:
    """The name of the installed package: spaCy's language code (xx for
    multi) before package_name."""
    return f"{spacy_lang(lang)}_{package_name(lang, encoder, distilled)}"


def package_description(lang: str, encoder: str, distillation: Optional[Dict[str, Any]]) -> str:
    """meta.json's description: languages, corpus, encoder and, for a
    distilled student, its teacher."""
    return (
        f"NER for {', '.join(languages(lang))} trained on {CORPUS_NAMES[lang].upper()} "
        f"with encoder {encoder}"
        + (f", distilled from {distillation['teacher_pipeline']} through silver data" if distillation else "")
        + "; entity scores as conlleval computes them."
    )

"""Tiny random-weight encoders built from the test data, loaded by local path:
a cased WordPiece BERT (conll_ner/training/tiny_bert.py, which the GPU check uses too)
and a SentencePiece-style Unigram XLM-R."""

import json
from pathlib import Path
from typing import Dict, Iterable, List

import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.util import load_config, load_model_from_config
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

from conll_ner.training.e5_checkpoint import sentencepiece_model
from conll_ner.training.tiny_bert import SIZE, build_tiny_bert  # noqa: F401 (the tests import it from here)


def build_tiny_xlmr(path: Path, texts: Iterable[str], vocab_size: int = 400) -> Path:
    """XLM-R's layout: <s> <pad> </s> <unk> first, the Unigram pieces, <mask>
    last, and a real sentencepiece.bpe.model of the same pieces and scores
    (conll_ner/training/e5_checkpoint.py writes it, as for the real
    multilingual encoder). spacy-transformers 1.4 carries that file with a
    pipeline; the fast tokenizer loads from tokenizer.json. The tiny one
    normalizes with NFKC, which its SentencePiece model (no precompiled
    charsmap) does not: only the fast tokenizer is ever run."""
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(
        list(texts),
        trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>"
        ),
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tokenizer.token_to_id("<s>")), ("</s>", tokenizer.token_to_id("</s>"))],
    )
    layout = json.loads(tokenizer.to_str())
    layout["model"]["vocab"].append(["<mask>", 0.0])
    layout["added_tokens"].append(
        {
            "id": len(layout["model"]["vocab"]) - 1,
            "content": "<mask>",
            "single_word": False,
            "lstrip": True,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
    )
    tokenizer = Tokenizer.from_str(json.dumps(layout))
    path.mkdir(parents=True, exist_ok=True)
    vocab_file = path / "sentencepiece.bpe.model"
    vocab_file.write_bytes(sentencepiece_model(layout))
    fast = XLMRobertaTokenizerFast(tokenizer_object=tokenizer, vocab_file=str(vocab_file), model_max_length=512)
    fast.save_pretrained(path)
    config = XLMRobertaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        max_position_embeddings=514,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        type_vocab_size=1,
        **SIZE,
    )
    XLMRobertaModel(config).save_pretrained(path)
    return path


def fixture_texts() -> List[str]:
    from fixtures import DUTCH, ENGLISH_TRAIN, SPANISH

    lines = []
    for text in (ENGLISH_TRAIN, SPANISH, DUTCH):
        lines.extend(line.split()[0] for line in text.splitlines() if line.strip())
    return [" ".join(lines)] * 3


def build_tiny_transformer_pipeline(root: Path, encoder: str = "bert") -> Path:
    """An initialized transformer+ner pipeline from configs/transformer.cfg,
    with a tiny random BERT (or XLM-R), saved to root/pipeline."""
    from conftest import PROJECT_DIR

    build = {"bert": build_tiny_bert, "xlmr": build_tiny_xlmr}[encoder]
    bert = build(root / encoder, fixture_texts())
    corpus = root / "corpus.spacy"
    DocBin(docs=[spacy.blank("en")(text) for text in fixture_texts()]).to_disk(corpus)
    cfg = load_config(
        PROJECT_DIR / "configs" / "transformer.cfg",
        overrides={
            "paths.train": str(corpus),
            "paths.dev": str(corpus),
            "paths.train_log": str(root / "train_log.jsonl"),
            "components.transformer.model.name": str(bert),
        },
    )
    init_nlp(cfg).to_disk(root / "pipeline")
    return root / "pipeline"


# a few sentences with entities, and an empty and a whitespace-only text
TRAIN = [
    ("Peter Blackburn visited Brussels .", [(0, 15, "PER"), (24, 32, "LOC")]),
    ("The European Commission said on Thursday .", [(4, 23, "ORG")]),
    ("EU rejects German call .", [(0, 2, "ORG"), (11, 17, "MISC")]),
    ("", []),
    ("   ", []),
]


def shipped_pipeline(config: str, overrides: Dict[str, object]) -> Language:
    """configs/<config>.cfg as it ships, with these overrides, untrained."""
    from conftest import PROJECT_DIR

    cfg = load_config(PROJECT_DIR / "configs" / f"{config}.cfg", overrides=overrides, interpolate=True)
    return load_model_from_config(cfg)


def train(nlp: Language, updates: int = 30) -> Language:
    """A few updates on batches that hold an empty and a whitespace-only Doc,
    until the pipeline predicts entities (else equal entities prove nothing)."""
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in TRAIN]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(updates):
        losses = nlp.update(examples, sgd=optimizer, losses={})
        assert all(loss == loss for loss in losses.values()), losses  # no NaN from the empty Docs
    return nlp


def trained_tiny_transformer(root: Path) -> Path:
    """configs/transformer.cfg with a tiny BERT, trained until it predicts
    entities, saved to root/pipeline: a transformer pipeline as users meet
    them, in seconds."""
    nlp = shipped_pipeline(
        "transformer", {"components.transformer.model.name": str(build_tiny_bert(root / "bert", fixture_texts()))}
    )
    train(nlp, updates=60)
    nlp.meta.update({"name": "tiny_trained", "version": "0.0.1"})
    nlp.to_disk(root / "pipeline")
    return root / "pipeline"

"""A random-weight cased BERT, tiny unless told otherwise, written to a local
folder, so that a transformer pipeline can be built and trained without the
Hugging Face hub: the GPU check trains a tiny one, the tests use it in place
of real encoders, and the GPU run (benchmarks/gpu_run.sh) builds real-sized
ones, whose speed and memory are real."""

from pathlib import Path
from typing import Dict, Iterable, Optional

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertModel, BertTokenizerFast

SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)


def build_tiny_bert(
    path: Path,
    texts: Iterable[str],
    vocab_size: int = 400,
    model_max_length: int = 512,
    dimensions: Optional[Dict[str, int]] = None,
) -> Path:
    """A WordPiece tokenizer trained on `texts` and a randomly initialized
    BERT, saved with `save_pretrained` so that `name = <path>` loads them.
    A small model_max_length makes the tokenizer truncate short texts.
    `dimensions` (BertConfig's hidden_size, num_hidden_layers, ...; default:
    tiny) may give the model more embedding rows (vocab_size) than the
    tokenizer has pieces: the extra rows are never used, but count in its
    size."""
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.train_from_iterator(list(texts), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")), ("[SEP]", tokenizer.token_to_id("[SEP]"))],
    )
    fast = BertTokenizerFast(tokenizer_object=tokenizer, do_lower_case=False, model_max_length=model_max_length)
    fast.save_pretrained(path)
    config = {"vocab_size": tokenizer.get_vocab_size(), **(dimensions or SIZE)}
    BertModel(BertConfig(max_position_embeddings=512, **config)).save_pretrained(path)
    return path

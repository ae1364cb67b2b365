"""A copy of an XLM-R-vocabulary checkpoint that keeps only the pieces a
corpus uses: the Trainer runs' and the update_cost mode's speed-up, which
leaves every output on that corpus unchanged.

multilingual-e5-small has 117M parameters, 96M of them the embeddings of
250,002 pieces; CoNLL-2002/2003 use about 32,000. On the CPU both optimizers
touch every parameter at every update (thinc's Adam on spaCy's side, torch's
dense embedding gradient and AdamW on the Trainer's), so the unused rows cost
most of an update's time while never changing a prediction on this data.

Why the outputs stay equal: the Unigram tokenizer segments each
whitespace-separated word on its own by the best-scoring path; removing
pieces that no best path on the corpus uses removes only worse paths, so every
text of the corpus gets the same pieces (checked, text by text, after the
copy is written). Those pieces get new ids, and their embedding rows move
with them; every other weight is the same. An unused row gets no gradient, so
neither optimizer moves it, except thinc's decoupled weight decay, which
shrinks it without it ever being read. The copy is for the corpus it was made
from: on other text it tokenizes differently (missing pieces split words into
smaller ones), so it is never a pipeline to ship.
"""

import json
import shutil
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence

from conll_ner.files import atomic_folder
from conll_ner.training.e5_checkpoint import sentencepiece_model

COPIED = ("tokenizer_config.json", "special_tokens_map.json", "build_info.json")


def piece_ids(tokenizer_json: Path, texts: Sequence[str]) -> List[List[int]]:
    """Each text's piece ids, without special tokens, by the fast tokenizer."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    return [encoding.ids for encoding in tokenizer.encode_batch(list(texts), add_special_tokens=False)]


def remap_ids(value: Any, new_id: Dict[int, int]) -> Any:
    """A copy of a tokenizer.json part whose `ids` lists (the post-processor's
    special tokens) name the new ids."""
    if isinstance(value, dict):
        return {
            key: [new_id[i] for i in item] if key == "ids" else remap_ids(item, new_id) for key, item in value.items()
        }
    if isinstance(value, list):
        return [remap_ids(item, new_id) for item in value]
    return value


def trim_vocabulary(checkpoint: Path, texts: Iterable[str], output: Path) -> Dict[str, Any]:
    """Write to `output` (atomically: a temporary folder renamed at the end)
    the checkpoint with only the pieces that `texts` use, the special tokens
    and <unk>; check that every text gets the same pieces as before; return
    what was kept."""
    import torch
    from safetensors.torch import load_file, save_file

    checkpoint, output = Path(checkpoint), Path(output)
    texts = list(texts)
    tokenizer_json = json.loads((checkpoint / "tokenizer.json").read_text(encoding="utf8"))
    vocab = tokenizer_json["model"]["vocab"]
    before = piece_ids(checkpoint / "tokenizer.json", texts)
    specials = {token["id"] for token in tokenizer_json.get("added_tokens", [])} | {tokenizer_json["model"]["unk_id"]}
    kept = sorted(specials | {i for ids in before for i in ids})
    new_id = {old: new for new, old in enumerate(kept)}
    trimmed_json = {
        **tokenizer_json,
        "added_tokens": [{**token, "id": new_id[token["id"]]} for token in tokenizer_json.get("added_tokens", [])],
        "post_processor": remap_ids(tokenizer_json.get("post_processor"), new_id),
        "model": {
            **tokenizer_json["model"],
            "vocab": [vocab[i] for i in kept],
            "unk_id": new_id[tokenizer_json["model"]["unk_id"]],
        },
    }
    config = json.loads((checkpoint / "config.json").read_text())
    state = load_file(str(checkpoint / "model.safetensors"))
    parameters_before = int(sum(value.numel() for value in state.values()))
    (name,) = [key for key in state if key.endswith("word_embeddings.weight")]
    state[name] = state[name][torch.tensor(kept)].contiguous()
    with atomic_folder(output) as staging:
        (staging / "tokenizer.json").write_text(json.dumps(trimmed_json, ensure_ascii=False), encoding="utf8")
        after = piece_ids(staging / "tokenizer.json", texts)
        changed = sum(1 for old, new in zip(before, after) if [new_id[i] for i in old] != new)
        if changed:
            raise ValueError(f"{changed} of {len(texts)} texts get other pieces from the trimmed vocabulary")
        (staging / "sentencepiece.bpe.model").write_bytes(sentencepiece_model(trimmed_json))
        (staging / "config.json").write_text(json.dumps({**config, "vocab_size": len(kept)}, indent=2) + "\n")
        save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
        for copied in COPIED:
            if (checkpoint / copied).is_file():
                shutil.copyfile(checkpoint / copied, staging / copied)
        info = {
            "source": str(checkpoint),
            "texts": len(texts),
            "pieces_before": len(vocab),
            "pieces_kept": len(kept),
            "embedding_rows_before": int(config["vocab_size"]),
            "parameters_before": parameters_before,
            "parameters": int(sum(value.numel() for value in state.values())),
            "texts_with_other_pieces": changed,
        }
        (staging / "trim_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info

"""The strongest CPU path a Hugging Face user would write by hand, as the
inference mode's yardstick: the Trainer's fine-tuned token-classification
model exported with `torch.onnx.export`, quantized with ONNX Runtime's
`quantize_dynamic` (int8 weights, per channel), then fast tokenizer +
session + argmax, first-subword labels decoded into entities with seqeval.
About twenty lines of user code; no graph fusion, which a user would not
know to run."""

import warnings
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy
from seqeval.metrics.sequence_labeling import get_entities


def export_int8(model_dir: str, folder: Path) -> Path:
    """The fine-tuned model as an int8 ONNX graph in `folder`."""
    import torch
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    return quantized_export(Logits(), "logits", folder)


def quantized_export(module: Any, output: str, folder: Path) -> Path:
    """`module` (input ids and attention mask in, one tensor out, named
    `output`) exported and quantized as the loop's user does it, in
    `folder`: the graph's path."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ids = torch.ones((2, 8), dtype=torch.long)
    fp32, int8 = folder / "model.onnx", folder / "model.int8.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (ids, torch.ones_like(ids)),
            str(fp32),
            dynamo=False,
            opset_version=17,
            input_names=["input_ids", "attention_mask"],
            output_names=[output],
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask", output)},
        )
    quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8)
    return int8


class OrtTagger:
    """Fast tokenizer, one ONNX Runtime session, argmax, entities."""

    def __init__(self, model_dir: str, graph: Path, threads: int) -> None:
        import onnxruntime
        from transformers import AutoConfig, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.labels = AutoConfig.from_pretrained(model_dir).id2label
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def tags(self, batch: Sequence[Any], pretokenized: bool) -> List[List[str]]:
        """First-subword tags of each word: the gold words, or the words the
        tokenizer's pre-tokenizer finds in raw text."""
        encoding = self.tokenizer(
            list(batch), is_split_into_words=pretokenized, padding=True, truncation=True, return_tensors="np"
        )
        feeds = {name: encoding[name].astype(numpy.int64) for name in ("input_ids", "attention_mask")}
        (logits,) = self.session.run(["logits"], feeds)
        best = logits.argmax(-1)
        tags = []
        for row in range(len(batch)):
            seen, row_tags = set(), []
            for position, word in enumerate(encoding.word_ids(row)):
                if word is not None and word not in seen:
                    seen.add(word)
                    row_tags.append(self.labels[int(best[row, position])])
            tags.append(row_tags)
        return tags


def tag_all(tagger: OrtTagger, items: Sequence[Any], batch_size: int, pretokenized: bool) -> Dict[str, Any]:
    """Tags and entities of every item, batch after batch."""
    tags: List[List[str]] = []
    entities: List[List[Tuple[str, int, int]]] = []
    for start in range(0, len(items), batch_size):
        batch_tags = tagger.tags(items[start : start + batch_size], pretokenized)
        tags += batch_tags
        entities += [get_entities(row) for row in batch_tags]
    return {"tags": tags, "entities": entities}

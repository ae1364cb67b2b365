"""In-memory stand-ins for the hub's CoNLL datasets: `tokens` and `ner_tags`
(a ClassLabel sequence) per row, `-DOCSTART-` rows included."""

from datasets import ClassLabel, Dataset, Features, Sequence, Value

NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def make_dataset(rows):
    features = Features(
        {"id": Value("string"), "tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=NAMES))}
    )
    return Dataset.from_dict(
        {
            "id": [str(i) for i in range(len(rows))],
            "tokens": [tokens for tokens, _ in rows],
            "ner_tags": [[NAMES.index(t) for t in tags] for _, tags in rows],
        },
        features=features,
    )


ROWS = [
    (["-DOCSTART-"], ["O"]),
    (["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"]),
    (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
    (["-DOCSTART-"], ["O"]),
    (["San", "Sebastián"], ["I-LOC", "I-LOC"]),
]

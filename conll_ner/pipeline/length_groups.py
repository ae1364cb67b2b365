"""Torch predictions in groups of windows of similar length.

spacy-transformers pads a batch to its longest window, so a batch of short
sentences with a few long ones is mostly padding; sorted groups of at most
`token_budget` padded tokens drop most of it, and the real tokens get the
same values (the evidence: docs/decisions.md, "The CPU runtime").

torch is imported where available: packaged CNN pipelines carry this module
too and need it not.
"""

from typing import Any, Callable, Dict, List, Sequence

from thinc.types import ArgsKwargs

try:
    import torch
except ImportError:  # a CNN pipeline's environment
    torch = None


def length_groups(lengths: Sequence[int], token_budget: int) -> List[List[int]]:
    """Row indices sorted by length and cut into groups whose padded size
    (rows x longest row) stays within `token_budget`; a longer row is a group
    of its own."""
    groups: List[List[int]] = []
    group: List[int] = []
    for row in sorted(range(len(lengths)), key=lengths.__getitem__):
        if group and (len(group) + 1) * lengths[row] > token_budget:
            groups.append(group)
            group = []
        group.append(row)
    return groups + [group] if group else groups


def equal_length_groups(lengths: Sequence[int], token_budget: int) -> List[List[int]]:
    """Row indices grouped by length, each group cut to at most
    `token_budget` tokens (at least one row; 0: no cut): groups that need no
    padding."""
    by_length: Dict[int, List[int]] = {}
    for row, length in enumerate(lengths):
        by_length.setdefault(length, []).append(row)
    groups = []
    for length, rows in sorted(by_length.items()):
        size = max(1, token_budget // max(length, 1)) if token_budget else len(rows)
        groups += [rows[start : start + size] for start in range(0, len(rows), size)]
    return groups


def predict_in_length_groups(predict: Callable[[ArgsKwargs], Any], inputs: ArgsKwargs, token_budget: int) -> Any:
    """`predict(inputs)` (a Hugging Face encoder's call), made once per
    length group of the batch's windows and merged back into one output of
    the batch's shape. Inputs it cannot cut (positional ones, no attention
    mask) and a budget of 0 take one call."""
    kwargs = inputs.kwargs
    mask = kwargs.get("attention_mask")
    if not token_budget or inputs.args or mask is None:
        return predict(inputs)
    lengths = [int(length) for length in mask.sum(1).tolist()]
    groups = length_groups(lengths, token_budget)
    if len(groups) == 1 and max(lengths) == mask.shape[1]:
        return predict(inputs)
    outputs = []
    for rows in groups:
        index, length = torch.tensor(rows), max(lengths[row] for row in rows)
        group = {
            key: value[index, :length] if torch.is_tensor(value) and value.shape == mask.shape else value
            for key, value in kwargs.items()
        }
        outputs.append(predict(ArgsKwargs(args=(), kwargs=group)))
    return merge_groups(outputs, groups, mask.shape[0], mask.shape[1])


def merge_groups(outputs: List[Any], groups: List[List[int]], n_rows: int, length: int) -> Any:
    """One output for the whole batch from the groups' outputs: per-token
    tensors (batch x sequence x ...) padded back to `length` with zeros,
    per-row tensors (batch x features) in their rows."""

    def merge(parts: List[Any]) -> Any:
        first = parts[0]
        if isinstance(first, tuple):
            return tuple(merge([part[i] for part in parts]) for i in range(len(first)))
        if not torch.is_tensor(first):
            return first
        shape = (n_rows, length, *first.shape[2:]) if first.dim() >= 3 else (n_rows, *first.shape[1:])
        merged = first.new_zeros(shape)
        for rows, part in zip(groups, parts):
            index = torch.tensor(rows)
            if first.dim() >= 3:
                merged[index, : part.shape[1]] = part
            else:
                merged[index] = part
        return merged

    return type(outputs[0])(**{key: merge([output[key] for output in outputs]) for key in outputs[0].keys()})
